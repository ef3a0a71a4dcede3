"""A sign-in under way ends with what it stands on (found by a red-team run): a step-up with the session that
started it (a logout, a revocation by refresh-token reuse), a login transaction with its user's disabling.
Before, the step-up's answer still gave a fresh two-factor session after its session had ended, and a login
opened before a disable completed once the user was enabled again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.accounts import Accounts, PhoneToken, bearer


def _logout(client: FlaskClient, session: dict[str, Any]) -> None:
    answer = client.post(
        "/api/v1/logout", json={"refresh_token": session["refresh_token"]}, headers=bearer(session)
    )
    assert answer.status_code == 204


def _reuse_its_refresh_token(client: FlaskClient, session: dict[str, Any]) -> None:
    body = {"refresh_token": session["refresh_token"]}
    assert client.post("/api/v1/token/refresh", json=body).status_code == 200
    assert client.post("/api/v1/token/refresh", json=body).status_code == 401  # reuse: the family ends


@pytest.mark.parametrize("end", [_logout, _reuse_its_refresh_token])
def test_a_step_up_ends_with_its_session(
    accounts: Accounts, end: Callable[[FlaskClient, dict[str, Any]], None]
) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    step_up = accounts.client.post("/api/v1/step-up", json={}, headers=bearer(session))
    assert step_up.status_code == 200, step_up.json
    end(accounts.client, session)
    answer = _answer(accounts, step_up.json["transaction_id"], phone)
    assert answer.status_code == 401 and answer.json["code"] == "transaction_expired", answer.json
    assert accounts.full_session("alice", phone)["acr"] == "mfa"  # the code was not spent on it


def test_a_login_under_way_ends_when_its_user_is_disabled(accounts: Accounts) -> None:
    admin = accounts.admin_session()
    phone = accounts.user_with_phone("alice")
    opened = accounts.login("alice")
    for action in ("disable", "enable"):
        changed = accounts.client.post(f"/api/v1/admin/users/alice/{action}", headers=bearer(admin))
        assert changed.status_code in (200, 204), changed.json
    answer = _answer(accounts, opened["transaction_id"], phone)
    assert answer.status_code == 401 and answer.json["code"] == "transaction_expired", answer.json


def _answer(accounts: Accounts, transaction_id: str, phone: PhoneToken) -> Any:
    code = phone.code(accounts.clock.now())
    return accounts.client.post("/api/v1/verify", json={"transaction_id": transaction_id, "otp": code})
