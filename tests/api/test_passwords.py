"""Password lifecycle of local users (issue 14, item 6): the user's own change needs a recent second factor
and the current password; an administrator's reset; directory users are told to use the directory."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import update

from server.db import db
from server.models import User
from tests.accounts import PASSWORD, Accounts, audit_events, bearer

NEW = "a new and longer passphrase"


def test_a_user_changes_their_password_and_their_other_sessions_end(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    other = accounts.full_session("alice", phone)
    mine = accounts.full_session("alice", phone)
    client = accounts.client

    wrong = client.post(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": NEW},
        headers=bearer(mine),
    )
    assert wrong.status_code == 401 and wrong.json["code"] == "invalid_credentials"
    short = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(mine),
    )
    assert short.status_code == 422

    changed = client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=bearer(mine)
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(mine)).status_code == 200  # this session stays
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 401  # the others end
    refused = client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 401
    assert accounts.login("alice", NEW)["status"] == "second_factor"
    results = [(e["action"], e["result"]) for e in audit_events(accounts.app, action_prefix="user.password")]
    assert results == [("user.password.change", "failure"), ("user.password.change", "success")]


def test_changing_a_password_needs_a_recent_second_factor(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    accounts.clock.advance(accounts.app.extensions["tokenward"].settings.step_up_max_age + 1)
    refreshed = accounts.client.post(
        "/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]}
    )
    session = refreshed.json  # a fresh access token, the same (now old) second factor
    body = {"current_password": PASSWORD, "new_password": NEW}
    stale = accounts.client.post("/api/v1/me/password", json=body, headers=bearer(session))
    assert stale.status_code == 403 and stale.json["code"] == "step_up_required"
    enroll_only = accounts.enroll_session(accounts.create_user("bob"))
    refused = accounts.client.post("/api/v1/me/password", json=body, headers=bearer(enroll_only))
    assert refused.status_code == 403


def test_an_administrator_resets_a_password_and_the_users_sessions_end(accounts: Accounts) -> None:
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("alice")
    alice = accounts.full_session("alice", phone)
    client = accounts.client

    assert (
        client.post(
            "/api/v1/admin/users/alice/password", json={"password": NEW}, headers=bearer(alice)
        ).status_code
        == 403
    )
    reset = client.post("/api/v1/admin/users/alice/password", json={"password": NEW}, headers=bearer(admin))
    assert reset.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(alice)).status_code == 401
    assert accounts.login("alice", NEW)["status"] == "second_factor"
    missing = client.post(
        "/api/v1/admin/users/nobody/password", json={"password": NEW}, headers=bearer(admin)
    )
    assert missing.status_code == 404
    short = client.post(
        "/api/v1/admin/users/alice/password", json={"password": "short"}, headers=bearer(admin)
    )
    assert short.status_code == 422


def test_a_directory_users_password_is_changed_in_the_directory(accounts: Accounts, app: Flask) -> None:
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("dora")
    session = accounts.full_session("dora", phone)
    with app.app_context():
        db.session.execute(
            update(User).where(User.username == "dora").values(source="ldap", external_id="x1")
        )
        db.session.commit()
    for path, body, headers in (
        ("/api/v1/admin/users/dora/password", {"password": NEW}, bearer(admin)),
        ("/api/v1/me/password", {"current_password": PASSWORD, "new_password": NEW}, bearer(session)),
    ):
        refused = accounts.client.post(path, json=body, headers=headers)
        assert refused.status_code == 409, refused.json
        assert refused.json["code"] == "password_in_directory"
        assert "directory" in refused.json["detail"]


def test_a_sign_in_under_way_ends_with_the_password_it_proved(accounts: Accounts) -> None:
    """A password checked before a reset or a change cannot be completed after it with a code: whoever
    knew the old password (the reason for a reset) has no sign-in left to finish."""
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("alice")
    client = accounts.client
    before_reset = accounts.login("alice")
    reset = client.post("/api/v1/admin/users/alice/password", json={"password": NEW}, headers=bearer(admin))
    assert reset.status_code == 204
    before_change = accounts.login("alice", NEW)
    signing_in = accounts.login("alice", NEW)
    code = phone.code(accounts.clock.now())
    mine = client.post(
        "/api/v1/verify", json={"transaction_id": signing_in["transaction_id"], "otp": code}
    ).json
    accounts.clock.advance(phone.period)
    body = {"current_password": NEW, "new_password": NEW + " again"}
    assert client.post("/api/v1/me/password", json=body, headers=bearer(mine)).status_code == 204
    for stale in (before_reset, before_change):
        code = phone.code(accounts.clock.now())
        answer = client.post("/api/v1/verify", json={"transaction_id": stale["transaction_id"], "otp": code})
        assert answer.status_code == 401 and answer.json["code"] == "transaction_expired", answer.json
    assert accounts.login("alice", NEW + " again")["status"] == "second_factor"
