"""`tokenward backup` of a real server's SQLite database while that server is being written to (sign-ins,
each writing a transaction and audit events), `tokenward restore` of it into a fresh instance, and a sign-in
there with the token enrolled before the backup."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.db import db
from server.migrations import upgrade_schema
from tests.accounts import PASSWORD, Accounts, LoginFormClient, PhoneToken, dispose_app
from tests.e2e.serve_process import TOKENWARD, ServeProcess, server_env

pytestmark = pytest.mark.slow

WRITES_SECONDS = 60.0


def _instance(instance_dir: Path, key: str) -> Settings:
    """The default deployment: SQLite in the instance directory."""
    return Settings(instance_dir=instance_dir, rate_limits=RateLimits.parse("off"), encryption_key=key)


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
        ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=2) as server,
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
    restore_env = {**env, "TOKENWARD_INSTANCE_DIR": str(fresh)}
    restored = subprocess.run(
        [TOKENWARD, "restore", str(backup_file)], env=restore_env, capture_output=True, text=True, timeout=60
    )
    assert restored.returncode == 0, restored.stderr
    assert "restored 1 users and 1 tokens" in restored.stdout

    app = create_app(_instance(fresh, key))
    app.test_client_class = LoginFormClient
    try:
        session = Accounts(app, app.test_client(), FrozenClock(time.time())).full_session("alice", phone)
        assert "otp" in session["amr"]
    finally:
        dispose_app(app)
