"""An administrator's action that lands while a sign-in is between reading its rows and committing (found by
a red-team run): a user disabled, or a client removed, in that window. The sign-in is refused; before, its
session escaped the disable's revocation (and worked again once the user was enabled), and a removed client
gave a 500 (its row gone under the session's foreign key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from server.db import db
from server.services import clients, one_step, users, verify
from server.services.actors import Actor
from tests.accounts import Accounts, audit_events, missing_service, register_client


def _elsewhere(app: Flask, action: Callable[[Session], Any]) -> None:
    """An administrator's service call on a connection of its own, committed before the sign-in goes on."""
    engine = create_engine(db.engine.url)
    try:
        with Session(engine) as other:
            action(other)
    finally:
        engine.dispose()


def _disable(app: Flask, username: str) -> Callable[[Session], Any]:
    rt, actor = app.extensions["tokenward"], Actor.console()
    return lambda other: users.set_disabled(other, rt, username=username, disabled=True, actor=actor)


def _during_the_read(monkeypatch: pytest.MonkeyPatch, app: Flask, action: Callable[[Session], Any]) -> None:
    real_find = one_step.find_user_with_tokens

    def find_then_act(*args: Any, **kwargs: Any) -> Any:
        found = real_find(*args, **kwargs)
        _elsewhere(app, action)
        return found

    monkeypatch.setattr(one_step, "find_user_with_tokens", find_then_act)


def test_a_user_disabled_while_the_one_step_form_reads_them_gets_no_session(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    _, headers = register_client(app, "shop")
    _during_the_read(monkeypatch, app, _disable(app, "alice"))
    answer = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(0)}, headers=headers
    )
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_credentials"
    refused = audit_events(app, action_prefix="verify.otp")[-1]
    assert (refused["result"], refused["reason"]) == ("failure", "user_disabled")


def test_a_client_removed_while_the_one_step_form_reads_its_user_is_refused(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    _, headers = register_client(app, "shop")
    rt = app.extensions["tokenward"]
    _during_the_read(
        monkeypatch,
        app,
        lambda other: clients.remove_client(other, rt, name="shop", actor=Actor.console()),
    )
    answer = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(0)}, headers=headers
    )
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_client"


def test_a_user_disabled_while_their_transaction_is_answered_gets_no_session(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race that needs PostgreSQL: on SQLite a transaction's answer reads and writes in one write
    transaction, so no disable can commit in between."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            missing_service("TOKENWARD_TEST_DATABASE_URL (PostgreSQL) is not set")
    phone = accounts.user_with_phone("alice", type="hotp")
    transaction_id = accounts.login("alice")["transaction_id"]
    real_owner = verify._owner

    def owner_then_disable(*args: Any, **kwargs: Any) -> Any:
        owner = real_owner(*args, **kwargs)  # the code was right and the user enabled: now the disable
        _elsewhere(app, _disable(app, "alice"))
        return owner

    monkeypatch.setattr(verify, "_owner", owner_then_disable)
    answer = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction_id, "otp": phone.code(0)}
    )
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_credentials"
