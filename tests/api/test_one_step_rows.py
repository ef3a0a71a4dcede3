"""The one-step verify's own path (server.services.one_step, on plain rows read by Core statements) keeps the
rules of every verify: wrong codes lock the token (and the lock is audited), a good code after the release
clears the lock count, a disabled user's right code is refused like a wrong one without being spent, and a
client removed, or its secret rotated, while the password is checked is refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from server.config import Settings
from server.db import db
from server.services import clients, one_step, users
from server.services.actors import Actor
from tests.accounts import PASSWORD, Accounts, audit_events, register_client

THRESHOLD = 3
RELEASE = 300


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, lockout_threshold=THRESHOLD, lockout_release=RELEASE)


def _token(app: Flask, token_id: str) -> dict[str, Any]:
    with app.app_context():
        query = text(
            "SELECT counter, last_time_step, fail_count, lock_count, locked_until FROM tokens WHERE id = :id"
        )
        return dict(db.session.execute(query, {"id": token_id}).mappings().one())


def test_wrong_one_step_codes_lock_the_token_and_a_good_code_after_the_release_clears_it(
    app: Flask, accounts: Accounts
) -> None:
    phone = accounts.user_with_phone("alice")  # TOTP
    right_code = phone.code(accounts.clock.now())
    wrong_code = f"{(int(right_code) + 500_000) % 1_000_000:06d}"
    for _ in range(THRESHOLD):
        wrong = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": wrong_code})
        assert (wrong.status_code, wrong.json["code"]) == (401, "invalid_otp"), wrong.json
    locked = _token(app, phone.token_id)
    assert (locked["fail_count"], locked["lock_count"]) == (THRESHOLD, 1)
    assert locked["locked_until"] == pytest.approx(accounts.clock.now() + RELEASE)
    assert [event["target"] for event in audit_events(app, action_prefix="token.lock")] == [
        f"token:{phone.token_id}"
    ]

    right = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": right_code})
    assert (right.status_code, right.json["code"]) == (401, "invalid_otp")  # no password: told no more
    assert audit_events(app, action_prefix="verify.otp")[-1]["reason"] == "token_locked"
    assert _token(app, phone.token_id)["last_time_step"] == locked["last_time_step"]  # not spent

    accounts.clock.advance(RELEASE)
    fresh = phone.code(accounts.clock.now())
    accepted = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": fresh})
    assert accepted.status_code == 200, accepted.json
    cleared = _token(app, phone.token_id)
    assert cleared["last_time_step"] == int(accounts.clock.now()) // phone.period
    assert (cleared["fail_count"], cleared["lock_count"], cleared["locked_until"]) == (0, 0, None)


def test_a_disabled_user_s_right_code_is_refused_like_a_wrong_one_and_not_spent(
    app: Flask, accounts: Accounts
) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    with app.app_context():
        rt = app.extensions["tokenward"]
        users.set_disabled(db.session, rt, username="alice", disabled=True, actor=Actor.console())
    counter = _token(app, phone.token_id)["counter"]
    right = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": phone.code(0)})
    unknown = accounts.client.post("/api/v1/verify", json={"username": "mallory", "otp": phone.code(0)})
    assert right.status_code == unknown.status_code == 401
    assert right.json == unknown.json
    assert right.json["code"] == "invalid_otp"
    reasons = [event["reason"] for event in audit_events(app, action_prefix="verify.otp")]
    assert reasons[-2:] == ["no_usable_token", "unknown_user"]
    assert _token(app, phone.token_id)["counter"] == counter


@pytest.mark.parametrize("change", ["remove_client", "rotate_secret"])
def test_a_client_removed_or_rotated_while_the_password_is_checked_is_refused(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A request authenticated by the client as it was gets no session once the client is gone or its
    secret rotated (a red-team run saw a session issued 130 ms after `rotate-secret` returned)."""
    phone = accounts.user_with_phone("alice", type="hotp")
    _, headers = register_client(app, "shop")
    real_check = one_step.authenticate_password
    rt = app.extensions["tokenward"]

    def check_then_change(session: Any, *args: Any, **kwargs: Any) -> Any:
        user = real_check(session, *args, **kwargs)
        getattr(clients, change)(session, rt, name="shop", actor=Actor.console())  # commits
        return user

    monkeypatch.setattr(one_step, "authenticate_password", check_then_change)
    counter = _token(app, phone.token_id)["counter"]
    answer = accounts.client.post(
        "/api/v1/verify",
        json={"username": "alice", "otp": phone.code(0), "password": PASSWORD},
        headers=headers,
    )
    assert (answer.status_code, answer.json["code"]) == (401, "invalid_client"), answer.json
    assert _token(app, phone.token_id)["counter"] == counter
