"""Self-releasing locks over HTTP: a locked token opens again after TOKENWARD_LOCKOUT_RELEASE (not before),
each consecutive lock lasts twice as long, an administrator's unlock opens it at once, and a caller who has
not proved the password cannot tell a locked token from a wrong code."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask

from server.config import Settings
from tests.accounts import Accounts, PhoneToken, audit_events, bearer

THRESHOLD = 3
RELEASE = 300


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, lockout_threshold=THRESHOLD, lockout_release=RELEASE, lockout_release_max=100 * RELEASE
    )


def _wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def _answer(accounts: Accounts, code: str) -> Any:
    """Password, then `code`, in a new transaction."""
    challenge = accounts.login("alice")
    return accounts.client.post(
        "/api/v1/verify", json={"transaction_id": challenge["transaction_id"], "otp": code}
    )


def _lock(accounts: Accounts, phone: PhoneToken) -> None:
    """THRESHOLD wrong codes in one transaction (its attempt budget is larger)."""
    transaction_id = accounts.login("alice")["transaction_id"]
    for _ in range(THRESHOLD):
        refused = accounts.client.post(
            "/api/v1/verify",
            json={"transaction_id": transaction_id, "otp": _wrong(phone.code(accounts.clock.now()))},
        )
        assert refused.json["code"] == "invalid_otp", refused.json


def _locked(accounts: Accounts, phone: PhoneToken) -> bool:
    """Tries the right code: refused as locked (the code stays unspent), or accepted."""
    answer = _answer(accounts, phone.code(accounts.clock.now()))
    if answer.status_code == 200:
        return False
    assert (answer.status_code, answer.json["code"]) == (403, "token_locked"), answer.json
    return True


def _lock_events(app: Flask) -> int:
    return len(audit_events(app, action_prefix="token.lock"))


def test_a_lock_releases_after_its_time_and_a_second_one_lasts_twice_as_long(
    app: Flask, accounts: Accounts
) -> None:
    clock = accounts.clock
    phone = accounts.user_with_phone("alice")

    _lock(accounts, phone)
    locked_at = clock.now()
    assert _lock_events(app) == 1
    clock.advance(RELEASE - 1)
    assert _locked(accounts, phone)

    clock.advance(locked_at + RELEASE - clock.now())
    _lock(accounts, phone)  # released: counting starts afresh, and the next lock is the second in a row
    relocked_at = clock.now()
    assert _lock_events(app) == 2
    clock.advance(2 * RELEASE - 1)
    assert _locked(accounts, phone)
    clock.advance(relocked_at + 2 * RELEASE - clock.now())
    assert not _locked(accounts, phone)

    # A good answer starts the doubling over.
    clock.advance(phone.period)
    _lock(accounts, phone)
    clock.advance(RELEASE)
    clock.advance(phone.period - clock.now() % phone.period)  # a fresh time step: a code not yet used
    assert not _locked(accounts, phone)


def test_an_administrators_unlock_releases_at_once(app: Flask, accounts: Accounts) -> None:
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("alice")
    _lock(accounts, phone)
    assert _locked(accounts, phone)
    view = accounts.client.get(
        "/api/v1/admin/tokens", query_string={"username": "alice"}, headers=bearer(admin)
    )
    assert [(t["id"], t["locked"], t["fail_count"]) for t in view.json["tokens"]] == [
        (phone.token_id, True, THRESHOLD)
    ], view.json

    unlocked = accounts.client.post(f"/api/v1/admin/tokens/{phone.token_id}/unlock", headers=bearer(admin))
    assert unlocked.status_code == 200 and unlocked.json["locked"] is False, unlocked.json
    assert not _locked(accounts, phone)


def test_without_a_password_a_locked_token_answers_like_a_wrong_code(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    _lock(accounts, phone)

    right = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    wrong = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": "000000"})
    for answer in (right, wrong):
        assert (answer.status_code, answer.json["code"]) == (401, "invalid_otp"), answer.json
    assert right.json == wrong.json
    events = audit_events(app, action_prefix="verify.otp")
    assert [(e["target"], e["result"], e["reason"]) for e in events[-2:]] == [
        ("alice", "failure", "token_locked"),
        ("alice", "failure", "token_locked"),
    ]
    # The password-verified caller is told the truth.
    assert _locked(accounts, phone)
