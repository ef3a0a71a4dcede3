"""The RADIUS door works unchanged for directory users: a real `tokenward radius serve` process against a
real slapd, asked by FreeRADIUS's `radclient`. The password half of User-Password is checked by a bind as
the user; a wrong one, a person disabled in the directory and a directory that stopped answering all get
Access-Reject (RADIUS has no 503), audited with the real reason and with nothing counted against the token.

One test, in phases: each phase needs the same accounts, directory and server, and starting them is most of
the cost (the suite's time budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from server.config import Settings
from server.db import db
from server.services.audit import Actor
from server.services.radius_clients import add_radius_client
from tests.accounts import Accounts
from tests.directories.conftest import directory_console
from tests.directories.slapd import Slapd, password_of
from tests.e2e.test_radius import SECRET, audit, received, start_radius, stop_radius

pytestmark = pytest.mark.slow

DISABLED = 512 | 0x2  # userAccountControl: NORMAL_ACCOUNT | ACCOUNTDISABLE
LOCKOUT_THRESHOLD = 2  # low, so that a few requests pass it


def _enroll_session(accounts: Accounts) -> dict[str, Any]:
    first = accounts.client.post(
        "/api/v1/login", json={"username": "alice", "password": password_of("alice")}
    )
    assert first.status_code == 200 and first.json["status"] == "enroll", first.json
    return first.json  # type: ignore[no-any-return]


def _pap(password: str) -> str:
    return f'User-Name = alice, User-Password = "{password}", Message-Authenticator = 0x00\n'


def _token_counters(database_url: str) -> tuple[int, object, str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text("SELECT fail_count, locked_until, state FROM tokens")).one()
    finally:
        engine.dispose()
    return int(row[0]), row[1], str(row[2])


def test_radclient_with_a_directory_password_and_code(
    tmp_path: Path,
    database_url: str,
    accounts: Accounts,
    settings: Settings,
    slapd: Slapd,
    service_password_file: Path,
) -> None:
    # Accounts made in-process (the console's start-up is most of a console command's cost): alice's first
    # sign-in with her directory password, an HOTP token enrolled in it, the NAS registered.
    phone = accounts.enroll_phone(_enroll_session(accounts), type="hotp")
    with accounts.app.app_context():
        add_radius_client(
            db.session,
            accounts.app.extensions["tokenward"],
            name="vpn",
            address="127.0.0.1/32",
            secret=SECRET,
            actor=Actor.console(),
        )
    console = directory_console(tmp_path, database_url, slapd, service_password_file)
    radius = start_radius(
        console, tmp_path, encryption_key=settings.encryption_key, lockout_threshold=str(LOCKOUT_THRESHOLD)
    )
    code = phone.code(0)
    try:
        accepted = radius.ask(_pap(password_of("alice") + code))
        assert received(accepted) == "Access-Accept", accepted.stdout + radius.log()
        next_code = phone.code(0)

        wrong_password = radius.ask(_pap("not-alices-password" + next_code))
        assert received(wrong_password) == "Access-Reject", wrong_password.stdout

        slapd.set_account_control("alice", DISABLED)
        disabled = radius.ask(_pap(password_of("alice") + next_code))
        assert received(disabled) == "Access-Reject", disabled.stdout
        slapd.set_account_control("alice", 512)

        slapd.stop()
        for _ in range(LOCKOUT_THRESHOLD + 1):  # past the lockout threshold, were anything counted
            down = radius.ask(_pap(password_of("alice") + next_code), retries=1)
            assert received(down) == "Access-Reject", down.stdout + radius.log()
        slapd.start()
        back = radius.ask(_pap(password_of("alice") + next_code))
        assert received(back) == "Access-Accept", back.stdout + radius.log()
    finally:
        stop_radius(radius)

    assert [row[3] for row in audit(console, "radius.reject")] == ["invalid_credentials"] * 2 + [
        "directory_unavailable"
    ] * (LOCKOUT_THRESHOLD + 1)
    password_checks = [row[3] for row in audit(console, "login.password")]
    assert password_checks.count("directory_refused") >= 1  # the disabled phase, by its real reason
    # One password check per request: no fall-through to reading the whole field as the password.
    assert password_checks.count("directory_unavailable") == LOCKOUT_THRESHOLD + 1
    assert _token_counters(database_url) == (0, None, "active")
    assert "directory-password" not in radius.log_path.read_text(errors="replace")
