"""The real `tokenward` command line, run as the separate program a user starts, or in the test's own process.

A console process costs about 0.7 s of CPU, nearly all of it importing SQLAlchemy, Flask and the services;
the suite runs over a hundred commands. In this process a command takes the same path (click's parsing, the
command, the services on the same database, the exit code and one-line errors) for a few milliseconds, with
the environment, working directory and standard input it would have had as a process. Each command family
still has tests that start the program itself (`process=True`): the entry point, and what only a process
shows (a traceback, an interpreter that exits).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from click.testing import CliRunner

TOKENWARD = shutil.which("tokenward", path=str(Path(sys.executable).parent)) or "tokenward"


# Commands that serve or wait until stopped: only ever a process of their own.
LONG_RUNNING = {("serve",), ("radius", "serve"), ("fob", "emulate")}
# The process's streams, environment and working directory are the command's while it runs: one at a time.
_ONE_AT_A_TIME = threading.Lock()


def run_console(
    args: tuple[str, ...],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    stdin: str = "",
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    if process or args[:1] in LONG_RUNNING or args[:2] in LONG_RUNNING:
        return subprocess.run(
            [TOKENWARD, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
        )
    return _in_this_process(args, env=env, cwd=cwd, stdin=stdin)


def _in_this_process(
    args: tuple[str, ...], *, env: dict[str, str], cwd: Path | None, stdin: str
) -> subprocess.CompletedProcess[str]:
    from provisioning.cli import main

    # Exactly `env`, as a process would see it: variables of this process that it lacks are unset.
    environment: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    environment.update(env)
    with _ONE_AT_A_TIME:
        saved_environ, saved_cwd = dict(os.environ), os.getcwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            result = CliRunner().invoke(main, list(args), input=stdin, env=environment, prog_name="tokenward")
        finally:
            # A command may set variables itself (`--config` sets TOKENWARD_CONFIG for its run).
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_environ)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What a process would have printed: an uncaught exception is a traceback on stderr and exit code 1.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess([TOKENWARD, *args], result.exit_code, result.stdout, stderr)
