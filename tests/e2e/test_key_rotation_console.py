"""`tokenward secrets rotate-key` as a real process beside a real server: killed with SIGKILL after its first
batch (a long `--pause` holds it there), the server goes on signing people in with secrets under either key;
run again, it finishes what is left and skips what is done; then the old key is no longer needed."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.services.crypto import NAMED_KEY_FORMAT, key_id
from server.services.sealed_columns import SEALED_COLUMNS
from tests.accounts import PASSWORD, Accounts, LoginFormClient, PhoneToken, dispose_app
from tests.e2e.serve_process import CHEAP_PASSWORD_HASHING, TOKENWARD, ServeProcess, server_env

pytestmark = pytest.mark.slow

USERS = ("ana", "ben")
PROGRESS_SECONDS = 60.0


def _blobs(database_url: str) -> list[bytes]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            blobs: list[bytes] = []
            for sealed in SEALED_COLUMNS:
                _table, _row_id, blob = sealed.clause()
                blobs += connection.scalars(select(blob).select_from(_table).where(blob.is_not(None))).all()
            return blobs
    finally:
        engine.dispose()


def _on_key(blobs: list[bytes], key_hex: str) -> int:
    prefix = NAMED_KEY_FORMAT + key_id(bytes.fromhex(key_hex))
    return sum(blob.startswith(prefix) for blob in blobs)


def _enroll_with_old_key(tmp_path: Path, database_url: str, old_key: str) -> dict[str, PhoneToken]:
    """Users with HOTP tokens and a signing key, sealed with `old_key` (in-process: cheaper than a server)."""
    clock = FrozenClock(time.time())
    settings = Settings(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        rate_limits=RateLimits.parse("off"),
        encryption_key=old_key,
        **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
    )
    app = create_app(settings, clock=clock)
    app.test_client_class = LoginFormClient
    try:
        accounts = Accounts(app, app.test_client(), clock)
        return {name: accounts.user_with_phone(name, type="hotp") for name in USERS}
    finally:
        dispose_app(app)


def _sign_in(server: ServeProcess, username: str, phone: PhoneToken) -> None:
    with requests.Session() as http:
        challenge = http.post(
            server.url("/api/v1/login"), json={"username": username, "password": PASSWORD}, timeout=10
        ).json()
        assert challenge["status"] == "second_factor", challenge
        verified = http.post(
            server.url("/api/v1/verify"),
            json={"transaction_id": challenge["transaction_id"], "otp": phone.code(0)},
            timeout=10,
        )
        assert verified.status_code == 200, (verified.text, server.log())


def _rotate(env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TOKENWARD, "secrets", "rotate-key", "--json", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_rotation_killed_midway_is_finished_by_running_it_again(tmp_path: Path, database_url: str) -> None:
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)
    phones = _enroll_with_old_key(tmp_path, database_url, old_key)
    total = len(_blobs(database_url))
    assert total >= len(USERS) + 1  # the tokens and at least one signing key
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        encryption_key=new_key,
        old_encryption_keys=old_key,
        rate_limits="off",
    )
    with ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1) as server:
        interrupted = _rotate(env, "--batch-size", "1", "--pause", "600")
        try:
            deadline = time.monotonic() + PROGRESS_SECONDS
            while _on_key(_blobs(database_url), new_key) == 0:
                assert interrupted.poll() is None, interrupted.communicate()
                assert time.monotonic() < deadline, "no batch was committed in time"
                time.sleep(0.05)  # polling interval
        finally:
            interrupted.send_signal(signal.SIGKILL)
            interrupted.communicate()
        assert interrupted.returncode == -signal.SIGKILL
        blobs = _blobs(database_url)
        assert (_on_key(blobs, new_key), len(blobs)) == (1, total)  # one batch of one row, then the kill

        for name in USERS:  # half-way: secrets under either key serve
            _sign_in(server, name, phones[name])

        finished = _rotate(env)
        stdout, stderr = finished.communicate(timeout=60)
        assert finished.returncode == 0, stderr
        report = json.loads(stdout)
        assert (report["rotated"], report["already_current"], report["unreadable"]) == (total - 1, 1, 0)
        assert report["tables"]["tokens"]["rotated"] == len(USERS)
        assert _on_key(_blobs(database_url), new_key) == total

        _sign_in(server, "ana", phones["ana"])  # a rotated token, on the running server

    # The old key can go: an instance that knows only the new key opens every secret.
    app = create_app(
        Settings(
            instance_dir=tmp_path / "instance",
            database_url=database_url,
            rate_limits=RateLimits.parse("off"),
            encryption_key=new_key,
            **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
        )
    )
    app.test_client_class = LoginFormClient
    try:
        Accounts(app, app.test_client(), FrozenClock(time.time())).full_session("ben", phones["ben"])
    finally:
        dispose_app(app)
