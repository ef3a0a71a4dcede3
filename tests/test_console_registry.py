"""The console's lazily imported command families: the registry tells the truth, and `--help` imports nothing
it does not need (what the module imports is checked, not how long it takes)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from provisioning.cli import main

# Prints which of these modules a console invocation (in-process, without exiting) ended up importing.
PROBE = """
import json, sys
from provisioning.cli import main
try:
    main(sys.argv[1:], prog_name="tokenward")
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {watched} if name in sys.modules)))
"""
HEAVY = ["server.app", "server.api", "server.web", "server.migrations", "alembic", "flask_limiter"]


def _imported(*args: str, watched: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=watched), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("name", sorted(main.lazy_commands))
def test_registered_summary_is_the_commands_own(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert command.name == name
    assert main.lazy_commands[name].summary == command.get_short_help_str(limit=10_000)


def test_help_lists_every_family_without_importing_one() -> None:
    families = [target.partition(":")[0] for target in (c.target for c in main.lazy_commands.values())]
    assert _imported("--help", watched=families + HEAVY) == []


def test_a_device_command_does_not_import_the_web_app() -> None:
    assert _imported("fob", "respond", "--help", watched=HEAVY) == []
