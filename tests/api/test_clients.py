"""Registered clients over HTTP: one-step verify and `verify {username}` need HTTP Basic client credentials
before any user is looked up; a client's sessions carry its audience and id; its allowed methods and required
level hold."""

from __future__ import annotations

import base64
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.accounts import PASSWORD, Accounts, PhoneToken, audit_events, basic, bearer, register_client
from tests.webauthn_client import SecurityKey

NO_CLIENT = {"Authorization": ""}  # LoginFormClient adds test-app's credentials only when none are given


def _verify(client: FlaskClient, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post("/api/v1/verify", json=body, headers=headers)


def _refused_client(response: Any) -> dict[str, Any]:
    assert response.status_code == 401, response.json
    assert response.json["code"] == "invalid_client", response.json
    assert response.headers["WWW-Authenticate"].startswith("Basic"), response.headers
    return response.json  # type: ignore[no-any-return]


def _code(accounts: Accounts, phone: PhoneToken) -> str:
    return phone.code(accounts.clock.now())


def test_anonymous_callers_are_refused_before_any_user_lookup(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    before = audit_events(app)
    answers = []
    for username in ("alice", "nobody-here"):
        for body in ({"username": username}, {"username": username, "otp": _code(accounts, phone)}):
            answers.append(_refused_client(_verify(accounts.client, body, NO_CLIENT)))
        answers.append(
            _refused_client(
                _verify(
                    accounts.client, {"username": username, "otp": "123456", "password": PASSWORD}, NO_CLIENT
                )
            )
        )
    assert all(answer == answers[0] for answer in answers), answers
    assert audit_events(app) == before  # no login.challenge, no verify.*: nobody was looked up
    # The code sent anonymously was not spent: the real client may still use it.
    assert (
        _verify(accounts.client, {"username": "alice", "otp": _code(accounts, phone)}, {}).status_code == 200
    )


def test_wrong_client_credentials_are_refused(app: Flask, accounts: Accounts) -> None:
    accounts.user_with_phone("alice")
    client_id, good = register_client(app, "shop")
    _, other = register_client(app, "other")
    other_secret = base64.b64decode(other["Authorization"].split()[1]).decode().split(":", 1)[1]
    wrong = [
        basic(client_id, "not-the-secret"),
        basic(client_id, other_secret),
        basic("0" * 32, other_secret),
        basic("shop", other_secret),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(client_id.encode()).decode()},  # no colon
        {"Authorization": "Basic"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},  # not UTF-8
    ]
    for headers in wrong:
        _refused_client(_verify(accounts.client, {"username": "alice"}, headers))
    assert _verify(accounts.client, {"username": "alice"}, good).status_code == 200


def test_a_removed_client_and_a_rotated_away_secret_stop_working(app: Flask, accounts: Accounts) -> None:
    admin = accounts.admin_session()
    accounts.user_with_phone("alice")
    created = accounts.client.post("/api/v1/admin/clients", json={"name": "shop"}, headers=bearer(admin))
    assert created.status_code == 201, created.json
    first = basic(created.json["client_id"], created.json["client_secret"])
    assert _verify(accounts.client, {"username": "alice"}, first).status_code == 200

    rotated = accounts.client.post("/api/v1/admin/clients/shop/rotate-secret", headers=bearer(admin))
    assert rotated.status_code == 201, rotated.json
    second = basic(rotated.json["client_id"], rotated.json["client_secret"])
    _refused_client(_verify(accounts.client, {"username": "alice"}, first))
    assert _verify(accounts.client, {"username": "alice"}, second).status_code == 200
    listed = accounts.client.get("/api/v1/admin/clients", headers=bearer(admin)).json["clients"]
    assert [view["name"] for view in listed] == ["shop"]
    assert all("secret" not in key for key in listed[0])

    removed = accounts.client.delete("/api/v1/admin/clients/shop", headers=bearer(admin))
    assert removed.status_code == 204
    _refused_client(_verify(accounts.client, {"username": "alice"}, second))


def test_a_clients_session_names_its_audience_and_id(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    client_id, headers = register_client(app, "billing", audience="billing-api")
    answer = _verify(accounts.client, {"username": "alice", "otp": _code(accounts, phone)}, headers)
    assert answer.status_code == 200, answer.json
    access_token = answer.json["access_token"]

    jwks = jwt.PyJWKSet.from_dict(accounts.client.get("/.well-known/jwks.json").json)
    key = next(k for k in jwks.keys if k.key_id == jwt.get_unverified_header(access_token)["kid"])
    claims = jwt.decode(
        access_token,
        key.key,
        algorithms=["ES256"],
        audience="billing-api",
        issuer=app.extensions["tokenward"].settings.public_url,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},  # the clock is frozen
    )
    assert (claims["aud"], claims["azp"], claims["preferred_username"]) == ("billing-api", client_id, "alice")
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            access_token, key.key, algorithms=["ES256"], audience="tokenward", options={"verify_exp": False}
        )
    # Meant for billing-api: at Tokenward it may read /me (a resource server's revocation check) and log
    # out, nothing else.
    assert accounts.client.get("/api/v1/me", headers=bearer(answer.json)).status_code == 200
    assert accounts.client.get("/api/v1/tokens", headers=bearer(answer.json)).status_code == 403
    assert accounts.client.post("/api/v1/logout", json={}, headers=bearer(answer.json)).status_code == 204
    assert accounts.client.get("/api/v1/me", headers=bearer(answer.json)).status_code == 401


def test_a_client_allowed_otp_only_refuses_keys_and_fobs(
    app: Flask, accounts: Accounts, passkey: SecurityKey
) -> None:
    _, headers = register_client(app, "otp-only", allow=["otp"])
    started = _verify(accounts.client, {"username": "alice"}, headers)
    assert started.status_code == 200, started.json
    assert started.json["methods"] == ["otp"] and "webauthn" not in started.json and "fob" not in started.json
    transaction_id = started.json["transaction_id"]

    credential = passkey.sign(passkey.start_passkey_login())
    for answer in ({"credential": credential}, {"fob_response": "123456"}):
        refused = _verify(accounts.client, {"transaction_id": transaction_id, **answer}, headers)
        assert (refused.status_code, refused.json["code"]) == (403, "method_not_allowed"), refused.json
    events = audit_events(app, action_prefix="verify.")
    assert [(e["action"], e["reason"]) for e in events] == [
        ("verify.webauthn", "method_not_allowed"),
        ("verify.fob", "method_not_allowed"),
    ]


def test_a_client_that_requires_mfa_refuses_a_code_alone(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    _, headers = register_client(app, "bank", require="mfa", audience="bank")
    code = _code(accounts, phone)
    for tried in ("000000" if code != "000000" else "111111", code):  # a wrong code, then the right one
        refused = _verify(accounts.client, {"username": "alice", "otp": tried}, headers)
        assert (refused.status_code, refused.json["code"]) == (403, "mfa_required"), refused.json
        assert "access_token" not in refused.json

    # Nor in a transaction the client opened with the name alone.
    started = _verify(accounts.client, {"username": "alice"}, headers)
    answer = {"transaction_id": started.json["transaction_id"], "otp": code}
    refused = _verify(accounts.client, answer, headers)
    assert (refused.status_code, refused.json["code"]) == (403, "mfa_required"), refused.json

    # Refused before it was checked, the code was not spent.
    body = {"username": "alice", "otp": code, "password": PASSWORD}
    accepted = _verify(accounts.client, body, headers)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["acr"] == "mfa"


def test_a_client_cannot_take_another_clients_audience(app: Flask, accounts: Accounts) -> None:
    """Its sessions would pass for the other client's at that audience's resource servers, without the other
    client's required level or methods (a red-team run registered a single-factor twin of an mfa client)."""
    admin = accounts.admin_session()
    first = accounts.client.post(
        "/api/v1/admin/clients",
        json={"name": "bank", "audience": "bank-api", "require": "mfa"},
        headers=bearer(admin),
    )
    assert first.status_code == 201, first.json
    for audience, status in (
        ("bank-api", 409),
        (first.json["client_id"], 409),  # a client id: the audience of a client registered without one
        (" bank-api", 422),
        ("bank-api\n", 422),
    ):
        twin = accounts.client.post(
            "/api/v1/admin/clients", json={"name": "twin", "audience": audience}, headers=bearer(admin)
        )
        assert twin.status_code == status, (audience, twin.json)
    other = accounts.client.post(
        "/api/v1/admin/clients", json={"name": "shop", "audience": "shop-api"}, headers=bearer(admin)
    )
    assert other.status_code == 201, other.json
