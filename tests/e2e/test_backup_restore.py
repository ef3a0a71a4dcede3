"""`tokenward backup` of a real server's SQLite database while that server is being written to (sign-ins,
each writing a transaction and audit events), `tokenward restore` of it into a fresh instance, and a sign-in
there with the token enrolled before the backup."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from provisioning.cli import main
from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.db import db
from server.migrations import upgrade_schema
from tests.accounts import PASSWORD, Accounts, LoginFormClient, PhoneToken, audit_events, dispose_app
from tests.e2e.serve_process import CHEAP_PASSWORD_HASHING, TOKENWARD, ServeProcess, server_env

pytestmark = pytest.mark.slow

WRITES_SECONDS = 60.0


def _instance(instance_dir: Path, key: str) -> Settings:
    """The default deployment: SQLite in the instance directory."""
    return Settings(
        instance_dir=instance_dir,
        rate_limits=RateLimits.parse("off"),
        encryption_key=key,
        **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
    )


def _enroll(settings: Settings) -> PhoneToken:
    clock = FrozenClock(time.time())
    app = create_app(settings, clock=clock)
    app.test_client_class = LoginFormClient
    try:
        with app.app_context():
            upgrade_schema(db.engine)
        return Accounts(app, app.test_client(), clock).user_with_phone("alice", type="hotp")
    finally:
        dispose_app(app)


class SignInLoad:
    """Password sign-ins against a server in a loop, each one a write (a transaction, audit events)."""

    def __init__(self, server: ServeProcess) -> None:
        self.server, self.done, self.failures = server, 0, []  # type: list[str]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                answer = http.post(
                    self.server.url("/api/v1/login"),
                    json={"username": "alice", "password": PASSWORD},
                    timeout=10,
                )
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                self.done += 1

    def __enter__(self) -> SignInLoad:
        self._thread.start()
        deadline = time.monotonic() + WRITES_SECONDS
        while self.done == 0:  # writing before the backup starts
            assert time.monotonic() < deadline and self._thread.is_alive(), self.server.log()
            time.sleep(0.02)  # polling interval
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_backup_taken_while_serving_restores_into_a_fresh_instance(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    live = _instance(tmp_path / "live", key)
    phone = _enroll(live)
    env = server_env(instance_dir=live.instance_dir, database_url="", encryption_key=key, rate_limits="off")
    backup_file = tmp_path / "backups" / "tokenward.db"
    backup_file.parent.mkdir()
    with (
        ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1) as server,
        SignInLoad(server) as load,
    ):
        made = subprocess.run(
            [TOKENWARD, "backup", str(backup_file), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert made.returncode == 0, made.stderr
    assert not load.failures, load.failures[:3]
    assert json.loads(made.stdout)["tokens"] == 1
    assert backup_file.stat().st_mode & 0o077 == 0
    assert [path.name for path in backup_file.parent.iterdir()] == ["tokenward.db"]  # no -wal, no partial

    fresh = tmp_path / "fresh"
    code, output = _console("restore", str(backup_file), env={**env, "TOKENWARD_INSTANCE_DIR": str(fresh)})
    assert code == 0, output
    assert "restored 1 users and 1 tokens" in " ".join(output.split())

    app = create_app(_instance(fresh, key))
    app.test_client_class = LoginFormClient
    try:
        session = Accounts(app, app.test_client(), FrozenClock(time.time())).full_session("alice", phone)
        assert "otp" in session["amr"]
    finally:
        dispose_app(app)


def _console(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The command in-process (click's runner): the console's wiring, without another process's start."""
    unset: dict[str, str | None] = {name: None for name in os.environ if name.startswith("TOKENWARD_")}
    result = CliRunner().invoke(main, list(args), env={**unset, **env})
    return result.exit_code, result.output


def test_the_console_refuses_with_one_line(tmp_path: Path) -> None:
    env = {"TOKENWARD_INSTANCE_DIR": str(tmp_path / "instance"), "TOKENWARD_DATABASE_URL": ""}
    code, output = _console(
        "backup", str(tmp_path / "x.db"), env={**env, "TOKENWARD_DATABASE_URL": "postgresql+psycopg://h/db"}
    )
    assert code == 1 and "pg_dump" in output
    code, output = _console("backup", str(tmp_path / "x.db"), env=env)
    assert (code, output.strip()) == (1, f"error: no database at {tmp_path / 'instance' / 'tokenward.db'}")

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\0" * 4096)
    code, output = _console("restore", str(garbage), env=env)
    assert code == 1 and output.startswith(f"error: {garbage} is not a SQLite database")

    key = secrets.token_hex(32)
    live = _instance(tmp_path / "live", key)
    _enroll(live)
    backup_file = tmp_path / "backup.db"
    live_env = {"TOKENWARD_INSTANCE_DIR": str(live.instance_dir), "TOKENWARD_ENCRYPTION_KEY": key}
    assert _console("backup", str(backup_file), env=live_env)[0] == 0
    code, output = _console("restore", str(backup_file), env=env)  # no key configured in the new instance
    assert code == 1 and output.startswith("error: no encryption key: set TOKENWARD_ENCRYPTION_KEY")
    code, output = _console("restore", str(backup_file), env=live_env)
    assert code == 1 and "already holds accounts; give --force" in output
    assert _actions(live) == [("backup.write", "success"), ("backup.restore", "failure")]
    assert _console("restore", str(backup_file), "--force", env=live_env)[0] == 0
    # The database is now the backup's (taken before either event), plus the restore's own event.
    assert _actions(live) == [("backup.restore", "success")]


def _actions(settings: Settings) -> list[tuple[str, str]]:
    app = create_app(settings)
    try:
        return [(event["action"], event["result"]) for event in audit_events(app, action_prefix="backup.")]
    finally:
        dispose_app(app)
