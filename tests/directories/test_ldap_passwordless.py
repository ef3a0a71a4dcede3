"""Sign-ins without a password still ask the directory: a registered client's one-step code and its
`verify {username}`, a passkey, a step-up, a refresh. A person disabled or removed there since their last
sign-in is refused although the row still looks enabled; a directory that does not answer is a 503 (nothing
counted, no fall-back to the row); local users never wait for it."""

from __future__ import annotations

from typing import Any

from flask import Flask

from devices.fido.soft_authenticator import SoftAuthenticator
from server.db import db
from server.directories.ldap import _id_filter_value
from server.models import Token
from tests.accounts import Accounts, PhoneToken, audit_events, bearer, login_form_credentials
from tests.directories.slapd import Slapd, password_of
from tests.webauthn_client import SecurityKey

ACCOUNTDISABLE = 512 | 0x2


def _enroll_session(accounts: Accounts, username: str = "alice") -> dict[str, Any]:
    """First sign-in with the directory password: the row is made and an enroll session given."""
    first = accounts.client.post(
        "/api/v1/login", json={"username": username, "password": password_of(username)}
    )
    assert first.status_code == 200 and first.json["status"] == "enroll", first.json
    return first.json  # type: ignore[no-any-return]


def _one_step(accounts: Accounts, phone: PhoneToken, username: str = "alice") -> Any:
    """`verify {username, otp}` from a registered client's login form (no password)."""
    answer = accounts.client.post(
        "/api/v1/verify", json={"username": username, "otp": phone.code(accounts.clock.now())}
    )
    accounts.clock.advance(phone.period)
    return answer


def _directory_refusals(app: Flask, action: str) -> int:
    return sum(
        1
        for event in audit_events(app, action_prefix=action)
        if event["result"] == "failure" and event["reason"] == "directory_refused"
    )


def test_a_one_step_code_is_refused_once_the_directory_disables_or_removes_the_user(
    accounts: Accounts, app: Flask, slapd: Slapd
) -> None:
    phone = accounts.enroll_phone(_enroll_session(accounts))
    assert _one_step(accounts, phone).status_code == 200

    slapd.set_account_control("alice", ACCOUNTDISABLE)
    disabled = _one_step(accounts, phone)
    slapd.set_account_control("alice", 512)
    enabled_again = _one_step(accounts, phone)
    slapd.delete("alice")
    removed = _one_step(accounts, phone)

    assert disabled.status_code == removed.status_code == 401, (disabled.json, removed.json)
    assert disabled.json["code"] == removed.json["code"] == "invalid_credentials"
    assert enabled_again.status_code == 200, enabled_again.json
    assert _directory_refusals(app, "verify.otp") == 2


def test_verify_username_then_its_answer_asks_the_directory(
    accounts: Accounts, app: Flask, slapd: Slapd
) -> None:
    phone = accounts.enroll_phone(_enroll_session(accounts))
    started = accounts.client.post("/api/v1/verify", json={"username": "alice"})
    assert started.status_code == 200, started.json
    slapd.set_account_control("alice", ACCOUNTDISABLE)

    answered = accounts.client.post(
        "/api/v1/verify",
        json={"transaction_id": started.json["transaction_id"], "otp": phone.code(accounts.clock.now())},
        headers=login_form_credentials(app),
    )

    assert answered.status_code == 401, answered.json
    assert _directory_refusals(app, "verify.otp") == 1


def test_a_passkey_and_a_step_up_ask_the_directory(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    fingerprint = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    fingerprint.enroll(_enroll_session(accounts))
    signed_in = fingerprint.passkey_login()  # the directory lets alice in
    assert signed_in["amr"] == ["hwk", "mfa"]
    slapd.set_account_control("alice", ACCOUNTDISABLE)

    challenge = fingerprint.start_passkey_login()
    passkey = fingerprint.verify(challenge["transaction_id"], fingerprint.sign(challenge))
    step_up = accounts.client.post("/api/v1/step-up", headers=bearer(signed_in))
    assert step_up.status_code == 200, step_up.json
    stepped = fingerprint.verify(step_up.json["transaction_id"], fingerprint.sign(step_up.json))

    assert passkey.status_code == stepped.status_code == 401, (passkey.json, stepped.json)
    assert _directory_refusals(app, "verify.webauthn") == 2


def test_a_directory_that_is_down_gives_503_without_a_lockout_and_local_users_go_on(
    accounts: Accounts, app: Flask, slapd: Slapd
) -> None:
    phone = accounts.enroll_phone(_enroll_session(accounts))
    local_phone = accounts.user_with_phone("root-local")
    slapd.stop()

    for _ in range(12):  # more than the lockout threshold
        down = _one_step(accounts, phone)
        assert down.status_code == 503, down.json
        assert down.json["code"] == "directory_unavailable"
        assert "ldap" not in down.get_data(as_text=True).lower()
    assert _one_step(accounts, local_phone, "root-local").status_code == 200

    with app.app_context():
        token = db.session.get(Token, phone.token_id)
        assert token is not None
        assert (token.fail_count, token.locked_until, token.state) == (0, None, "active")
    reasons = [event["reason"] for event in audit_events(app, action_prefix="verify.otp")]
    assert reasons.count("directory_unavailable") == 12
    slapd.start()
    assert _one_step(accounts, phone).status_code == 200


def test_a_refresh_asks_the_directory(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    phone = accounts.enroll_phone(_enroll_session(accounts))
    session = _one_step(accounts, phone).json

    def refresh(token: str) -> Any:
        # The session was issued to the login form's client: it refreshes it with its credentials.
        return accounts.client.post(
            "/api/v1/token/refresh",
            json={"refresh_token": token},
            headers=login_form_credentials(accounts.app),
        )

    slapd.stop()
    down = refresh(session["refresh_token"])
    assert down.status_code == 503 and down.json["code"] == "directory_unavailable"
    slapd.start()
    renewed = refresh(session["refresh_token"])  # the 503 left the token unspent
    assert renewed.status_code == 200, renewed.json

    slapd.set_account_control("alice", ACCOUNTDISABLE)
    refused = refresh(renewed.json["refresh_token"])
    assert refused.status_code == 401 and refused.json["code"] == "invalid_refresh_token"
    assert accounts.client.get("/api/v1/me", headers=bearer(renewed.json)).status_code == 401  # ended
    refreshes = [event["reason"] for event in audit_events(app, action_prefix="session.refresh")]
    assert refreshes == ["directory_unavailable", "", "directory_refused"]


def test_the_stable_id_is_looked_up_as_the_directory_stores_it() -> None:
    """AD's objectGUID is searched as its 16 bytes (little-endian fields, as AD stores them); any other id
    attribute as escaped text, so a hostile stored value cannot widen the filter."""
    guid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert (
        _id_filter_value("objectGUID", guid)
        == "\\e0\\04\\25\\3f\\89\\4f\\d3\\11\\9a\\0c\\03\\05\\e8\\2c\\33\\01"
    )
    assert _id_filter_value("entryUUID", "x*)(uid=*") == "x\\2a\\29\\28uid=\\2a"
