"""What an outside review of the client registry found: a client's audience posing as Tokenward's own, a
public client with a secret, and a malformed answer that told known names from unknown ones."""

from __future__ import annotations

import pytest
from flask import Flask

from server.db import db
from server.errors import ValidationFailed
from server.services import clients
from server.services.audit import Actor
from tests.accounts import Accounts, basic, login_form_credentials
from tests.webauthn_client import SecurityKey


def _add(app: Flask, **options: object) -> tuple[str, str | None]:
    """The new client's (client_id, secret)."""
    with app.app_context():
        rt = app.extensions["tokenward"]
        created = clients.add_client(db.session, rt, actor=Actor.console(), **options)  # type: ignore[arg-type]
        return created.client.id, created.secret


def test_a_client_cannot_take_tokenwards_own_audience(app: Flask) -> None:
    with pytest.raises(ValidationFailed, match="TOKENWARD_JWT_AUDIENCE"):
        _add(app, name="posing", audience="tokenward")


def test_a_public_client_has_no_secret_and_cannot_call_verify(accounts: Accounts) -> None:
    accounts.user_with_phone("alice")
    client_id, secret = _add(accounts.app, name="spa", public=True)
    assert secret is None
    for guess in ("", "x"):
        answer = accounts.client.post(
            "/api/v1/verify", json={"username": "alice"}, headers=basic(client_id, guess)
        )
        assert answer.status_code == 401 and answer.json["code"] == "invalid_client"
    listed = accounts.client.get("/api/v1/admin/clients", headers=_admin(accounts)).json["clients"]
    assert [view["public"] for view in listed if view["name"] == "spa"] == [True]


def _admin(accounts: Accounts) -> dict[str, str]:
    session = accounts.admin_session()
    return {"Authorization": f"Bearer {session['access_token']}"}


def test_a_malformed_key_answer_looks_the_same_for_every_name(
    accounts: Accounts, passkey: SecurityKey
) -> None:
    """alice has a key; nobody is called mallory. A password-less caller gets one and the same refusal."""
    headers = login_form_credentials(accounts.app)
    bodies = []
    for name in ("alice", "mallory"):
        challenge = accounts.client.post("/api/v1/verify", json={"username": name}).json
        for credential in ({}, {"id": "AAAA", "type": "public-key", "response": {}}):
            answer = accounts.client.post(
                "/api/v1/verify",
                json={"transaction_id": challenge["transaction_id"], "credential": credential},
                headers=headers,
            )
            assert answer.status_code == 401
            bodies.append((name, answer.json["code"], answer.json["detail"]))
    assert {body[1:] for body in bodies if body[0] == "alice"} == {
        body[1:] for body in bodies if body[0] == "mallory"
    }
