"""The trust model over HTTP: enroll sessions end when the first factor activates, a lost factor is replaced
only with a recovery or temporary code, every session says how it was earned (acr, amr, auth_time), admin
work needs two factors, changing one's factors needs a recent sign-in (step-up)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.config import Settings
from server.db import db
from server.errors import MfaRequired, StepUpRequired
from server.services import users
from server.services.assurance import check_access
from server.services.audit import Actor
from server.services.recovery_codes import issue_temporary_code
from tests.accounts import Accounts, PhoneToken, bearer, register_client
from tests.webauthn_client import SecurityKey

STEP_UP_MAX_AGE = 120


@pytest.fixture
def first_enrollment() -> str:
    return "password"


@pytest.fixture
def settings(settings: Settings, first_enrollment: str) -> Settings:
    # Shorter than the access token's life (600 s), so that an old sign-in meets step-up, not expiry.
    return dataclasses.replace(settings, step_up_max_age=STEP_UP_MAX_AGE, first_enrollment=first_enrollment)


def _claims(session: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(session["access_token"], options={"verify_signature": False})


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["code"] == code, response.json


def _refresh(client: FlaskClient, session: dict[str, Any]) -> Any:
    return client.post("/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]})


def _disable(client: FlaskClient, admin: dict[str, Any], token_id: str) -> None:
    response = client.post(f"/api/v1/admin/tokens/{token_id}/disable", headers=bearer(admin))
    assert response.status_code == 200, response.json


def _temporary_code(client: FlaskClient, admin: dict[str, Any], username: str) -> str:
    response = client.post(
        f"/api/v1/admin/users/{username}/temporary-code", json={"ttl": 600}, headers=bearer(admin)
    )
    assert response.status_code == 201, response.json
    return str(response.json["code"])


def _answer_with_code(accounts: Accounts, username: str, field: str, code: str) -> dict[str, Any]:
    """Password, then a recovery or temporary code: the session."""
    challenge = accounts.login(username)
    assert challenge["status"] == "second_factor", challenge
    method = "recovery" if field == "recovery_code" else field
    assert method in challenge["methods"], challenge
    response = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": challenge["transaction_id"], field: code}
    )
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


# --- enroll sessions ---------------------------------------------------------------------------------------


def test_an_enroll_session_ends_when_the_first_factor_activates(accounts: Accounts) -> None:
    client = accounts.client
    accounts.create_user("bob")
    earlier = accounts.enroll_session("bob")
    assert client.get("/api/v1/me", headers=bearer(earlier)).status_code == 200

    # Someone else (the real bob, or whoever also knows the password) activates a phone first.
    accounts.enroll_phone(accounts.enroll_session("bob"))

    _problem(client.get("/api/v1/me", headers=bearer(earlier)), 401, "invalid_token")
    _problem(
        client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(earlier)), 401, "invalid_token"
    )
    _problem(_refresh(client, earlier), 401, "invalid_refresh_token")
    again = accounts.login("bob")
    assert again["status"] == "second_factor" and again["methods"] == ["otp"], again
    assert "access_token" not in again


def test_a_lost_factor_needs_a_temporary_code_not_the_password(accounts: Accounts) -> None:
    client = accounts.client
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("bob", role="admin")
    _disable(client, admin, phone.token_id)

    _problem(
        client.post("/api/v1/login", json={"username": "bob", "password": "correct horse battery"}),
        403,
        "enrollment_needs_code",
    )

    recovery = _answer_with_code(accounts, "bob", "temporary_code", _temporary_code(client, admin, "bob"))
    _assert_recovery_session(accounts, recovery, amr=["pwd", "temporary_code"])


def test_a_lost_factor_is_replaced_with_a_recovery_code(accounts: Accounts) -> None:
    client = accounts.client
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("bob", role="admin")
    full = accounts.full_session("bob", phone)
    created = client.post("/api/v1/recovery-codes", headers=bearer(full))
    assert created.status_code == 201, created.json
    _disable(client, admin, phone.token_id)

    recovery = _answer_with_code(accounts, "bob", "recovery_code", created.json["codes"][0])
    _assert_recovery_session(accounts, recovery, amr=["pwd", "recovery_code"])


def _assert_recovery_session(accounts: Accounts, recovery: dict[str, Any], *, amr: list[str]) -> None:
    """A session from a recovery or temporary code may enroll a factor and nothing else (bob is an admin)."""
    client = accounts.client
    claims = _claims(recovery)
    assert (recovery["acr"], recovery["amr"], recovery["scope"]) == ("recovery", amr, "enroll")
    assert (claims["acr"], claims["amr"], claims["scope"]) == ("recovery", amr, "enroll")
    for method, path in [
        ("GET", "/api/v1/admin/users"),
        ("GET", "/api/v1/admin/audit"),
        ("POST", "/api/v1/admin/clients"),
        ("GET", "/api/v1/recovery-codes"),
        ("POST", "/api/v1/recovery-codes"),
        ("POST", "/api/v1/step-up"),
    ]:
        response = client.open(path, method=method, json={"name": "x"}, headers=bearer(recovery))
        assert response.status_code == 403, (path, response.json)
    phone = accounts.enroll_phone(recovery)
    # The account is enrolled again: the recovery session has ended, the new phone signs in.
    _problem(client.get("/api/v1/me", headers=bearer(recovery)), 401, "invalid_token")
    assert _claims(accounts.full_session("bob", phone))["acr"] == "mfa"


@pytest.mark.parametrize("first_enrollment", ["invitation"])
def test_invitation_only_first_enrollment_needs_a_temporary_code(app: Flask, accounts: Accounts) -> None:
    client = accounts.client
    accounts.create_user("root", role="admin")
    with app.app_context():  # the first administrator's invitation comes from the console
        root = users.get_user(db.session, username="root")
        code = issue_temporary_code(
            db.session, app.extensions["tokenward"], user=root, ttl_seconds=600, actor=Actor.console()
        ).code
    admin = accounts.full_session(
        "root", accounts.enroll_phone(_answer_with_code(accounts, "root", "temporary_code", code))
    )
    accounts.create_user("newcomer")

    _problem(
        client.post("/api/v1/login", json={"username": "newcomer", "password": "correct horse battery"}),
        403,
        "enrollment_needs_code",
    )
    invited = _answer_with_code(
        accounts, "newcomer", "temporary_code", _temporary_code(client, admin, "newcomer")
    )
    assert (invited["scope"], invited["acr"]) == ("enroll", "recovery")
    accounts.enroll_phone(invited)


# --- assurance ---------------------------------------------------------------------------------------------


def _one_step(
    accounts: Accounts, headers: dict[str, str], username: str, phone: PhoneToken
) -> dict[str, Any]:
    response = accounts.client.post(
        "/api/v1/verify",
        json={"username": username, "otp": phone.code(accounts.clock.now())},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    accounts.clock.advance(phone.period)
    return response.json  # type: ignore[no-any-return]


def test_sessions_say_how_they_were_earned(app: Flask, accounts: Accounts) -> None:
    client, clock = accounts.client, accounts.clock
    phone = accounts.user_with_phone("bob", role="admin")
    _, headers = register_client(app, "intranet")

    signed_in_at = int(clock.now())
    mfa = accounts.full_session("bob", phone)
    me = client.get("/api/v1/me", headers=bearer(mfa)).json
    assert (mfa["acr"], mfa["amr"]) == ("mfa", ["otp", "pwd", "mfa"])
    assert _claims(mfa)["auth_time"] == me["auth_time"] == signed_in_at
    assert (me["acr"], me["amr"]) == ("mfa", ["otp", "pwd", "mfa"])
    assert client.get("/api/v1/admin/users", headers=bearer(mfa)).status_code == 200

    one_step_at = int(clock.now())
    single = _one_step(accounts, headers, "bob", phone)
    assert (single["acr"], single["amr"]) == ("single-factor", ["otp"])
    assert _claims(single)["auth_time"] == one_step_at
    assert client.get("/api/v1/me", headers=bearer(single)).json["acr"] == "single-factor"
    # A client's session is the client's: it reads /me and logs out, and administers nothing.
    for path in ("/api/v1/admin/users", "/api/v1/admin/audit", "/api/v1/admin/clients", "/api/v1/tokens"):
        _problem(client.get(path, headers=bearer(single)), 403, "forbidden")
    # A refresh (by the client it was issued to) keeps what the sign-in earned.
    _problem(_refresh(client, single), 401, "invalid_client")
    refreshed = client.post(
        "/api/v1/token/refresh", json={"refresh_token": single["refresh_token"]}, headers=headers
    ).json
    assert (_claims(refreshed)["acr"], _claims(refreshed)["auth_time"]) == ("single-factor", one_step_at)
    _problem(client.get("/api/v1/admin/users", headers=bearer(refreshed)), 403, "forbidden")


def test_admin_work_needs_two_factors() -> None:
    """Defence in depth behind the scopes: a full session of one factor (none is issued today) is refused."""
    claims = {"scope": "session", "acr": "single-factor", "auth_time": 0}
    with pytest.raises(MfaRequired):
        check_access("admin", claims=claims, role="admin", now=1.0, step_up_max_age=600)
    check_access("user", claims=claims, role="admin", now=1.0, step_up_max_age=600)
    with pytest.raises(StepUpRequired):
        check_access("step_up", claims={**claims, "acr": "mfa"}, role="user", now=700.0, step_up_max_age=600)


def test_a_passkey_with_user_verification_is_phishing_resistant(
    accounts: Accounts, passkey: SecurityKey
) -> None:
    for session in (passkey.login("alice"), passkey.passkey_login()):
        me = accounts.client.get("/api/v1/me", headers=bearer(session)).json
        assert session["acr"] == _claims(session)["acr"] == me["acr"] == "phishing-resistant"
        assert _claims(session)["auth_time"] == me["auth_time"] == int(accounts.clock.now())


def test_changing_factors_needs_a_recent_sign_in(accounts: Accounts) -> None:
    client, clock = accounts.client, accounts.clock
    phone = accounts.user_with_phone("bob")
    signed_in_at = clock.now()
    old = accounts.full_session("bob", phone)  # moves the clock one period on
    assert client.get("/api/v1/recovery-codes", headers=bearer(old)).status_code == 200

    clock.advance(signed_in_at + STEP_UP_MAX_AGE - clock.now())  # exactly the max age: still recent
    recent = client.post("/api/v1/recovery-codes", headers=bearer(old))
    assert recent.status_code == 201, recent.json
    clock.advance(1)
    refused = [
        client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(old)),
        client.delete(f"/api/v1/tokens/{phone.token_id}", headers=bearer(old)),
        client.post("/api/v1/recovery-codes", headers=bearer(old)),
        client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(_refresh(client, old).json)),
    ]
    for response in refused:
        _problem(response, 403, "step_up_required")
    assert client.get("/api/v1/recovery-codes", headers=bearer(old)).json["remaining"] == 10

    started = client.post("/api/v1/step-up", headers=bearer(old))
    assert started.status_code == 200, started.json
    assert started.json["methods"] == ["otp"], started.json
    answered = client.post(
        "/api/v1/verify",
        json={"transaction_id": started.json["transaction_id"], "otp": phone.code(clock.now())},
    )
    assert answered.status_code == 200, answered.json
    new = answered.json
    assert _claims(new)["auth_time"] == int(clock.now()) and new["acr"] == "mfa"
    _problem(client.get("/api/v1/me", headers=bearer(old)), 401, "invalid_token")
    assert client.post("/api/v1/recovery-codes", headers=bearer(new)).status_code == 201
    assert client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(new)).status_code == 201
    assert client.delete(f"/api/v1/tokens/{phone.token_id}", headers=bearer(new)).status_code == 204
