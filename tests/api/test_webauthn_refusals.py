"""Security key answers the server must refuse, each with a 4xx problem+json and a stable code (never 500):
wrong origin or RP ID, replays, another transaction's challenge, tampering, cloned keys, unknown and disabled
keys, duplicate registrations."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from werkzeug.test import TestResponse

from devices.fido import ctap_commands
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.accounts import PASSWORD, Accounts, bearer
from tests.webauthn_client import SecurityKey, b64url, lax_browser, ok, unb64url


def refused(response: TestResponse, code: str, status: int = 401) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json or {}
    assert body["code"] == code, body
    return body


def _tamper(credential: dict[str, Any], field: str, change: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(credential))
    raw = bytearray(unb64url(copy["response"][field]))
    change(raw)
    copy["response"][field] = b64url(bytes(raw))
    return copy


def _flip_last(raw: bytearray) -> None:
    raw[-1] ^= 0x01


def test_a_wrong_origin(accounts: Accounts, passkey: SecurityKey) -> None:
    elsewhere = SecurityKey(accounts.client, device=passkey.device, origin="http://localhost:8080")
    challenge = passkey.start_login("alice")
    body = refused(
        elsewhere.verify(challenge["transaction_id"], elsewhere.sign(challenge)), "invalid_credential"
    )
    assert "origin" in str(body["detail"]).lower()
    new_key = SecurityKey(accounts.client, origin="http://localhost:8080")
    session = passkey.login("alice")
    pending = new_key.begin_enrollment(session)
    refused(new_key.activate(session, pending["id"], new_key.create(pending)), "invalid_credential")


def test_a_wrong_rp_id_at_registration(accounts: Accounts) -> None:
    accounts.create_user("bob")
    session = accounts.enroll_session("bob")
    phished = SecurityKey(accounts.client, client_data=lax_browser())
    pending = phished.begin_enrollment(session)
    pending["publicKey"]["rp"]["id"] = "evil.example"
    body = refused(phished.activate(session, pending["id"], phished.create(pending)), "invalid_credential")
    assert "RP ID" in body["detail"]
    assert accounts.login("bob")["status"] == "enroll"  # still no active token


def test_a_wrong_rp_id_at_login(accounts: Accounts, tmp_path: Path) -> None:
    """The same key pair answering for another site (the credential copied to another RP ID)."""
    state = tmp_path / "key.json"
    accounts.create_user("bob")
    SecurityKey(accounts.client, state_file=state).enroll(accounts.enroll_session("bob"))
    data = json.loads(state.read_text())
    data["credentials"][0]["rp_id"] = "evil.example"
    state.write_text(json.dumps(data))
    phished = SecurityKey(accounts.client, state_file=state, client_data=lax_browser())
    challenge = phished.start_login("bob")
    challenge["webauthn"]["publicKey"]["rpId"] = "evil.example"
    body = refused(phished.verify(challenge["transaction_id"], phished.sign(challenge)), "invalid_credential")
    assert "RP ID" in body["detail"]


def test_a_replayed_assertion(passkey: SecurityKey) -> None:
    challenge = passkey.start_login("alice")
    assertion = passkey.sign(challenge)
    ok(passkey.verify(challenge["transaction_id"], assertion))
    refused(passkey.verify(challenge["transaction_id"], assertion), "transaction_expired")
    refused(passkey.verify(passkey.start_login("alice")["transaction_id"], assertion), "invalid_credential")


def test_another_transactions_challenge(passkey: SecurityKey) -> None:
    first, second = passkey.start_login("alice"), passkey.start_login("alice")
    assertion = passkey.sign(first)
    body = refused(passkey.verify(second["transaction_id"], assertion), "invalid_credential")
    assert "challenge" in body["detail"].lower()
    ok(passkey.verify(first["transaction_id"], assertion))  # its own transaction still takes it


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("signature", _flip_last),
        ("authenticatorData", _flip_last),  # the counter's last byte
        ("clientDataJSON", lambda raw: raw.__setitem__(slice(None), raw.replace(b"get", b"GET"))),
    ],
    ids=["signature", "authenticator-data", "client-data"],
)
def test_a_tampered_assertion(passkey: SecurityKey, field: str, change: Any) -> None:
    challenge = passkey.start_login("alice")
    tampered = _tamper(passkey.sign(challenge), field, change)
    refused(passkey.verify(challenge["transaction_id"], tampered), "invalid_credential")


def test_a_tampered_registration(accounts: Accounts) -> None:
    accounts.create_user("bob")
    session = accounts.enroll_session("bob")
    forger = SecurityKey(accounts.client)
    pending = forger.begin_enrollment(session)

    def as_assertion(raw: bytearray) -> None:
        raw[:] = raw.replace(b"webauthn.create", b"webauthn.get")

    tampered = _tamper(forger.create(pending), "clientDataJSON", as_assertion)
    refused(forger.activate(session, pending["id"], tampered), "invalid_credential")


def test_a_counter_regression_disables_the_key(accounts: Accounts, passkey: SecurityKey) -> None:
    passkey.login("alice")
    passkey.login("alice")  # the server has seen counter 2
    [credential_id] = passkey.credential_ids
    passkey.device.set_sign_count(credential_id, 0)  # a clone that starts over
    challenge = passkey.start_login("alice")
    refused(
        passkey.verify(challenge["transaction_id"], passkey.sign(challenge)), "credential_counter_regressed"
    )
    admin = accounts.admin_session()
    [token] = ok(accounts.client.get("/api/v1/admin/tokens?username=alice", headers=bearer(admin)))["tokens"]
    assert token["state"] == "disabled"
    audit = ok(
        accounts.client.get("/api/v1/admin/audit?action=token.counter_regression", headers=bearer(admin))
    )
    [event] = audit["events"]
    assert event["target"] == f"token:{token['id']}" and event["result"] == "failure"
    assert event["reason"] == "credential_counter_regressed"
    # The key no longer counts, and a user who had a factor gets no enroll session from a password alone.
    refused(
        accounts.client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD}),
        "enrollment_needs_code",
        403,
    )
    passkey.device.set_sign_count(credential_id, 100)  # even a higher counter cannot revive it
    discoverable = passkey.start_passkey_login()
    refused(passkey.verify(discoverable["transaction_id"], passkey.sign(discoverable)), "invalid_credential")


def test_an_equal_counter_is_a_regression(passkey: SecurityKey) -> None:
    passkey.login("alice")
    passkey.device.set_sign_count(passkey.credential_ids[0], 0)  # the next assertion says 1 again
    challenge = passkey.start_login("alice")
    refused(
        passkey.verify(challenge["transaction_id"], passkey.sign(challenge)), "credential_counter_regressed"
    )


def test_an_unknown_credential(accounts: Accounts, passkey: SecurityKey) -> None:
    stranger = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    accounts.create_user("bob")
    bob_session = accounts.enroll_session("bob")
    pending = stranger.begin_enrollment(bob_session)
    stranger.create(pending)  # the key made a credential, the server never activated it
    challenge = passkey.start_login("alice")
    refused(
        stranger.verify(challenge["transaction_id"], stranger.sign(challenge, allow=[])), "invalid_credential"
    )
    discoverable = stranger.start_passkey_login()
    refused(
        stranger.verify(discoverable["transaction_id"], stranger.sign(discoverable)), "invalid_credential"
    )


def test_another_users_key(accounts: Accounts, passkey: SecurityKey) -> None:
    accounts.create_user("bob")
    bobs = SecurityKey(accounts.client)
    bobs.enroll(accounts.enroll_session("bob"))
    challenge = passkey.start_login("alice")
    refused(
        bobs.verify(challenge["transaction_id"], bobs.sign(challenge, allow=bobs.credential_ids)),
        "invalid_credential",
    )


def test_a_disabled_key(accounts: Accounts, passkey: SecurityKey) -> None:
    spare = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    spare_id = spare.enroll(passkey.login("alice"))
    admin = accounts.admin_session()
    ok(accounts.client.post(f"/api/v1/admin/tokens/{spare_id}/disable", headers=bearer(admin)))
    challenge = passkey.start_login("alice")
    assert [
        unb64url(c["id"]) for c in challenge["webauthn"]["publicKey"]["allowCredentials"]
    ] == passkey.credential_ids
    refused(
        spare.verify(challenge["transaction_id"], spare.sign(challenge, allow=spare.credential_ids)),
        "invalid_credential",
    )
    discoverable = spare.start_passkey_login()
    refused(spare.verify(discoverable["transaction_id"], spare.sign(discoverable)), "invalid_credential")
    passkey.login("alice")  # the other key still works


def test_the_same_credential_registered_twice(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two users' keys claiming one credential id (a cloned or malicious key): the second is refused."""
    fixed = secrets.token_bytes(ctap_commands.CREDENTIAL_ID_BYTES)
    monkeypatch.setattr(ctap_commands, "secrets", SimpleNamespace(token_bytes=lambda n: fixed))
    accounts.create_user("alice")
    accounts.create_user("bob")
    SecurityKey(accounts.client).enroll(accounts.enroll_session("alice"))
    bob_session = accounts.enroll_session("bob")
    copy = SecurityKey(accounts.client)
    pending = copy.begin_enrollment(bob_session)
    refused(copy.activate(bob_session, pending["id"], copy.create(pending)), "conflict", 409)
    assert accounts.login("bob")["status"] == "enroll"


def test_a_registration_is_used_once(accounts: Accounts) -> None:
    # A full, recent session: an enroll-only one would end when the key activates.
    session = accounts.full_session("bob", accounts.user_with_phone("bob"))
    security_key = SecurityKey(accounts.client)
    pending = security_key.begin_enrollment(session)
    credential = security_key.create(pending)
    ok(security_key.activate(session, pending["id"], credential))
    refused(security_key.activate(session, pending["id"], credential), "conflict", 409)
    other = security_key.begin_enrollment(session)
    refused(security_key.activate(session, other["id"], credential), "invalid_credential")


def test_an_expired_enrollment(accounts: Accounts) -> None:
    accounts.create_user("bob")
    session = accounts.enroll_session("bob")
    security_key = SecurityKey(accounts.client)
    pending = security_key.begin_enrollment(session)
    credential = security_key.create(pending)
    accounts.clock.advance(pending["expires_in"] + 1)
    later = accounts.enroll_session("bob")
    refused(security_key.activate(later, pending["id"], credential), "enrollment_expired", 410)


def test_a_credential_for_an_otp_transaction(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("carol")
    challenge = accounts.login("carol")
    assert challenge["methods"] == ["otp"] and "webauthn" not in challenge
    stray = SecurityKey(accounts.client)
    response = stray.verify(challenge["transaction_id"], {"id": "AAAA", "type": "public-key", "response": {}})
    refused(response, "invalid_credential")
    assert phone.token_id
