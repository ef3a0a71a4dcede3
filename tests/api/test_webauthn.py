"""Security keys over the HTTP API: python-fido2's `Fido2Client` drives the software authenticator against the
Flask test client. Registration, login, several keys, passkeys, and every refusal as problem+json."""

from __future__ import annotations

import jwt
import pytest
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from werkzeug.test import TestResponse

from devices.fido.errors import CeremonyFailed
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.accounts import Accounts, bearer, login_form_credentials
from tests.webauthn_client import SecurityKey, b64url, ok, unb64url

PIN = "2468-pin"


@pytest.fixture
def key(accounts: Accounts) -> SecurityKey:
    """alice with one enrolled security key (non-discoverable answers aside, the soft key makes it one)."""
    accounts.create_user("alice")
    security_key = SecurityKey(accounts.client)
    security_key.enroll(accounts.enroll_session("alice"), description="blue key")
    return security_key


def problem(response: TestResponse, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body is not None and body["code"] == code, body
    return body


def test_enroll_then_login_gives_a_hardware_key_session(accounts: Accounts, key: SecurityKey) -> None:
    session = key.login("alice")
    assert session["amr"] == ["hwk", "pwd", "mfa"]  # no user verification: key and password, two factors
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["amr"] == ["hwk", "pwd", "mfa"] and claims["preferred_username"] == "alice"
    me = ok(accounts.client.get("/api/v1/me", headers=bearer(session)))
    [token] = me["tokens"]
    assert token["type"] == "webauthn" and token["state"] == "active"
    assert token["description"] == "blue key"
    assert token["aaguid"] == str(key.device.aaguid)
    assert token["last_used_at"] == accounts.clock.now()


def test_creation_options_follow_the_contract(accounts: Accounts) -> None:
    accounts.create_user("alice")
    pending = SecurityKey(accounts.client).begin_enrollment(accounts.enroll_session("alice"))
    assert pending["state"] == "pending" and pending["type"] == "webauthn"
    public_key = pending["publicKey"]
    assert public_key["rp"] == {"id": "localhost", "name": "Tokenward"}
    assert public_key["user"]["name"] == "alice"
    assert len(unb64url(public_key["user"]["id"])) == 16  # the stable random id, not the name
    assert len(unb64url(public_key["challenge"])) >= 16
    assert {"type": "public-key", "alg": -7} in public_key["pubKeyCredParams"]


def test_login_offers_the_registered_keys(accounts: Accounts, key: SecurityKey) -> None:
    challenge = key.start_login("alice")
    allowed = challenge["webauthn"]["publicKey"]["allowCredentials"]
    assert [unb64url(entry["id"]) for entry in allowed] == key.credential_ids


def test_verify_username_names_no_key_and_a_passkey_answers_it(
    accounts: Accounts, passkey: SecurityKey
) -> None:
    """Without a password nothing may tell whether a name has keys: the options list no credential ids (a
    discoverable key answers, with user verification); the transaction is the client's alone."""
    one_step = ok(accounts.client.post("/api/v1/verify", json={"username": "alice"}))
    assert one_step["status"] == "challenge" and not one_step["webauthn"]["publicKey"].get("allowCredentials")
    credential = passkey.sign(one_step)
    session = ok(passkey.verify(one_step["transaction_id"], credential, login_form_credentials(accounts.app)))
    assert session["amr"] == ["hwk", "mfa"] and session["acr"] == "phishing-resistant"


def test_several_keys_per_user(accounts: Accounts, key: SecurityKey) -> None:
    spare = SecurityKey(accounts.client, device=SoftAuthenticator())
    spare.enroll(key.login("alice"), description="spare")
    challenge = key.start_login("alice")
    assert len(challenge["webauthn"]["publicKey"]["allowCredentials"]) == 2
    ok(spare.verify(challenge["transaction_id"], spare.sign(challenge)))
    key.login("alice")  # either key answers
    listed = ok(accounts.client.get("/api/v1/tokens", headers=bearer(key.login("alice"))))["tokens"]
    assert sorted(token["description"] for token in listed) == ["blue key", "spare"]


def test_the_second_enrollment_excludes_the_first_key(accounts: Accounts, key: SecurityKey) -> None:
    pending = key.begin_enrollment(key.login("alice"))
    excluded = pending["publicKey"]["excludeCredentials"]
    assert [unb64url(entry["id"]) for entry in excluded] == key.credential_ids


def test_a_passkey_login_without_a_username(accounts: Accounts) -> None:
    accounts.create_user("alice")
    fingerprint = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    fingerprint.enroll(accounts.enroll_session("alice"))
    challenge = fingerprint.start_passkey_login()
    assert challenge["methods"] == ["webauthn"]
    public_key = challenge["webauthn"]["publicKey"]
    assert "allowCredentials" not in public_key and public_key["userVerification"] == "required"
    session = ok(fingerprint.verify(challenge["transaction_id"], fingerprint.sign(challenge)))
    assert session["amr"] == ["hwk", "mfa"]  # possession and user verification
    assert ok(accounts.client.get("/api/v1/me", headers=bearer(session)))["username"] == "alice"


def test_one_key_with_passkeys_for_two_users(accounts: Accounts) -> None:
    shared = SoftAuthenticator(builtin_uv=True)
    for username in ("alice", "bob"):
        accounts.create_user(username)
        SecurityKey(accounts.client, device=shared).enroll(accounts.enroll_session(username))
    key = SecurityKey(accounts.client, device=shared)
    for account, expected in ((0, "bob"), (1, "alice")):  # the key offers the newest first
        challenge = key.start_passkey_login()
        session = ok(key.verify(challenge["transaction_id"], key.sign(challenge, account=account)))
        assert ok(accounts.client.get("/api/v1/me", headers=bearer(session)))["username"] == expected


def test_a_passkey_with_a_pin(accounts: Accounts) -> None:
    device = SoftAuthenticator()
    ClientPin(Ctap2(device)).set_pin(PIN)
    accounts.create_user("alice")
    pinned = SecurityKey(accounts.client, device=device, pin=PIN)
    pinned.enroll(accounts.enroll_session("alice"))
    assert pinned.passkey_login()["amr"] == ["hwk", "mfa"]


def test_a_passkey_requires_user_verification(accounts: Accounts) -> None:
    """The server insists, whatever a client does with the options."""
    accounts.create_user("alice")
    fingerprint = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    fingerprint.enroll(accounts.enroll_session("alice"))
    challenge = fingerprint.start_passkey_login()
    challenge["webauthn"]["publicKey"]["userVerification"] = "discouraged"
    unverified = fingerprint.sign(challenge)
    problem(fingerprint.verify(challenge["transaction_id"], unverified), 401, "invalid_credential")


def test_a_passkey_of_a_disabled_user(accounts: Accounts) -> None:
    accounts.create_user("alice")
    fingerprint = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    fingerprint.enroll(accounts.enroll_session("alice"))
    admin = accounts.admin_session()
    ok(accounts.client.post("/api/v1/admin/users/alice/disable", headers=bearer(admin)))
    challenge = fingerprint.start_passkey_login()
    refused = fingerprint.verify(challenge["transaction_id"], fingerprint.sign(challenge))
    assert refused.status_code == 401, refused.json


def test_a_non_discoverable_key_cannot_answer_a_passkey_login(accounts: Accounts, key: SecurityKey) -> None:
    """The soft key made alice's credential discoverable (residentKey preferred); this one is not."""
    accounts.create_user("bob")
    plain = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    session = accounts.enroll_session("bob")
    pending = plain.begin_enrollment(session)
    pending["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged"
    ok(plain.activate(session, pending["id"], plain.create(pending)))
    with pytest.raises(CeremonyFailed, match="no credential"):
        plain.sign(plain.start_passkey_login())


def test_a_key_registered_as_non_discoverable_cannot_answer_a_passkey_login(accounts: Accounts) -> None:
    """A client that reports no credProps: the key keeps a resident credential, but the server registered it
    as non-discoverable, and a passkey login (no username) refuses it with a code of its own."""
    accounts.create_user("alice")
    fingerprint = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    session = accounts.enroll_session("alice")
    pending = fingerprint.begin_enrollment(session)
    credential = fingerprint.create(pending)
    credential["clientExtensionResults"].pop("credProps", None)
    ok(fingerprint.activate(session, pending["id"], credential))

    challenge = fingerprint.start_passkey_login()
    refused = fingerprint.verify(challenge["transaction_id"], fingerprint.sign(challenge))
    problem(refused, 401, "credential_not_discoverable")
    assert fingerprint.login("alice")["amr"] == ["hwk", "pwd", "mfa"]  # with a username it still works


def test_a_removed_key_no_longer_signs_in(accounts: Accounts, key: SecurityKey) -> None:
    spare = SecurityKey(accounts.client)
    spare_id = spare.enroll(key.login("alice"))
    session = key.login("alice")
    assert accounts.client.delete(f"/api/v1/tokens/{spare_id}", headers=bearer(session)).status_code == 204
    challenge = key.start_login("alice")
    assertion = spare.sign(challenge, allow=spare.credential_ids)
    problem(spare.verify(challenge["transaction_id"], assertion), 401, "invalid_credential")


def test_failures_then_success_resets_the_failure_count(accounts: Accounts, key: SecurityKey) -> None:
    """Lockout counts consecutive failures: a good assertion clears them."""
    admin = accounts.admin_session()
    for _ in range(3):
        challenge = key.start_login("alice")
        key.verify(challenge["transaction_id"], {"id": "x"})
    listed = ok(accounts.client.get("/api/v1/admin/tokens?username=alice", headers=bearer(admin)))["tokens"]
    assert [token["fail_count"] for token in listed] == [3]
    key.login("alice")
    listed = ok(accounts.client.get("/api/v1/admin/tokens?username=alice", headers=bearer(admin)))["tokens"]
    assert [token["fail_count"] for token in listed] == [0]


def test_an_enroll_session_cannot_sign_with_its_pending_key(accounts: Accounts) -> None:
    accounts.create_user("alice")
    session = accounts.enroll_session("alice")
    pending_key = SecurityKey(accounts.client)
    pending_key.begin_enrollment(session)
    assert accounts.login("alice")["status"] == "enroll"  # a pending key is no factor yet


def test_the_credential_id_travels_as_base64url(key: SecurityKey) -> None:
    challenge = key.start_login("alice")
    assertion = key.sign(challenge)
    assert assertion["id"] == b64url(key.credential_ids[0]) == assertion["rawId"]
