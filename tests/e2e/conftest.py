"""The real `tokenward` console on the test's database (in this process, or as a program of its own: see
tests/e2e/console_runner.py), and an app on the same database and instance directory (so it opens the same
sealed secrets and has the console's origin)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from server.app import create_app
from server.config import RateLimits, Settings
from server.services.crypto import load_or_create_key
from tests.accounts import LoginFormClient, dispose_app
from tests.e2e.console_runner import run_console
from tests.e2e.serve_process import CHEAP_PASSWORD_HASHING, CHEAP_PASSWORD_HASHING_ENV


class Console:
    """`process`: every command as a program of its own (else in this process, but what serves); a single
    command's `process=True` runs that one as a program."""

    def __init__(self, tmp_path: Path, database_url: str, *, process: bool = False) -> None:
        self.cwd, self.process = tmp_path, process
        self.instance_dir = tmp_path / "instance"
        # An existing instance, as a server leaves it: the console refuses to make a new encryption key.
        self.instance_dir.mkdir(mode=0o700, exist_ok=True)
        load_or_create_key(self.instance_dir, "")
        self.database_url = database_url
        self.env = {
            **os.environ,
            "TOKENWARD_INSTANCE_DIR": str(self.instance_dir),
            "TOKENWARD_DATABASE_URL": database_url,
            "TOKENWARD_RATE_LIMITS": "off",
            **CHEAP_PASSWORD_HASHING_ENV,
            "COLUMNS": "400",  # rich's progress and tables; errors stay one line regardless
        }

    def run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None, process: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return run_console(
            args, env=env or self.env, cwd=self.cwd, stdin=stdin, process=process or self.process
        )

    def ok(self, *args: str, stdin: str = "", process: bool = False) -> str:
        result = self.run(*args, stdin=stdin, process=process)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def fails(self, *args: str, stdin: str = "", process: bool = False) -> str:
        """The one stderr line of a failed command (prompts such as "Touch your key…" aside)."""
        result = self.run(*args, stdin=stdin, process=process)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if not line.endswith("…")]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


@pytest.fixture
def console(tmp_path: Path, database_url: str) -> Console:
    return Console(tmp_path, database_url)


@pytest.fixture
def api(console: Console) -> Iterator[Flask]:
    """Built with the default public URL, as the console is (the same WebAuthn origin and RP ID)."""
    app = create_app(
        Settings(
            instance_dir=console.instance_dir,
            database_url=console.database_url,
            rate_limits=RateLimits.parse("off"),
            **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
        )
    )
    app.test_client_class = LoginFormClient
    yield app
    dispose_app(app)
