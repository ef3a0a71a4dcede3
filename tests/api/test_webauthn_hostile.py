"""Any value in any field of the credential JSON (registration and assertion) is a 4xx problem, never a 500:
a real response from the soft authenticator with one field replaced by hypothesis."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from server.db import db
from server.models import SessionFamily, Token, User
from tests.accounts import Accounts
from tests.webauthn_client import SecurityKey, b64url

ASSERTION_FIELDS = [
    ("id",),
    ("rawId",),
    ("type",),
    ("authenticatorAttachment",),
    ("clientExtensionResults",),
    ("response",),
    ("response", "clientDataJSON"),
    ("response", "authenticatorData"),
    ("response", "signature"),
    ("response", "userHandle"),
]
REGISTRATION_FIELDS = [
    ("id",),
    ("rawId",),
    ("type",),
    ("authenticatorAttachment",),
    ("clientExtensionResults",),
    ("clientExtensionResults", "credProps"),
    ("response",),
    ("response", "clientDataJSON"),
    ("response", "attestationObject"),
    ("response", "transports"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
field_values = (
    json_values
    | st.binary(max_size=300).map(b64url)  # base64url of random bytes: gets past the decoding
    | st.binary(max_size=200).map(lambda raw: b64url(b'{"type":"webauthn.get","challenge":' + raw))
)
# Fields the server may ignore: a changed value there may still sign in or register.
INFORMATIONAL = {
    ("authenticatorAttachment",),
    ("clientExtensionResults",),
    ("clientExtensionResults", "credProps"),
    ("response", "transports"),
}
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _replace(credential: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any] | None:
    changed = copy.deepcopy(credential)
    parent = changed
    for name in path[:-1]:
        if not isinstance(parent.get(name), dict):
            return None
        parent = parent[name]
    if parent.get(path[-1]) == value:
        return None
    parent[path[-1]] = value
    return changed


def _assert_problem(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    assert isinstance(response.json["code"], str)


@SETTINGS
@given(path=st.sampled_from(ASSERTION_FIELDS), value=field_values)
def test_any_assertion_field(passkey: SecurityKey, path: tuple[str, ...], value: Any) -> None:
    challenge = passkey.start_passkey_login()
    changed = _replace(passkey.sign(challenge), path, value)
    assume(changed is not None)
    response = passkey.verify(challenge["transaction_id"], changed)
    if response.status_code == 200:
        assert path in INFORMATIONAL, path
        return
    _assert_problem(response)


@SETTINGS
@given(value=json_values)
def test_any_credential_value(passkey: SecurityKey, value: Any) -> None:
    challenge = passkey.start_passkey_login()
    response = passkey.client.post(
        "/api/v1/verify", json={"transaction_id": challenge["transaction_id"], "credential": value}
    )
    _assert_problem(response)


@pytest.fixture
def bob(accounts: Accounts) -> dict[str, Any]:
    accounts.create_user("bob")
    return accounts.enroll_session("bob")


def _fresh_registration(
    accounts: Accounts, session: dict[str, Any]
) -> tuple[SecurityKey, str, dict[str, Any]]:
    """A new pending token (the user's earlier ones removed, so the per-user limit never bites) and the real
    registration response of a new key. An example whose changed credential still activates ends bob's
    enroll session (a first factor does), so bob starts afresh each time: no factor, the session live."""
    with accounts.app.app_context():
        db.session.execute(delete(Token))
        db.session.execute(update(User).values(factor_enrolled_at=None))
        db.session.execute(update(SessionFamily).values(revoked_at=None))
        db.session.commit()
    key = SecurityKey(accounts.client)
    token = key.begin_enrollment(session)
    return key, token["id"], key.create(token)


@SETTINGS
@given(path=st.sampled_from(REGISTRATION_FIELDS), value=field_values)
def test_any_registration_field(
    accounts: Accounts, bob: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    key, token_id, credential = _fresh_registration(accounts, bob)
    changed = _replace(credential, path, value)
    assume(changed is not None)
    response = key.activate(bob, token_id, changed)
    if response.status_code == 200:
        assert path in INFORMATIONAL, path
        return
    _assert_problem(response)


def test_a_registration_body_that_is_no_object(accounts: Accounts, bob: dict[str, Any]) -> None:
    _, token_id, _ = _fresh_registration(accounts, bob)
    for value in (None, [], "text", 5, {"credential": 1}, {"type": "public-key"}):
        response = accounts.client.post(
            f"/api/v1/tokens/{token_id}/activate",
            data=json.dumps({"credential": value}),
            headers={"Authorization": f"Bearer {bob['access_token']}", "Content-Type": "application/json"},
        )
        _assert_problem(response)
