"""An administrator's action that lands while a sign-in is between reading its rows and committing (found by
a red-team run): a user disabled, or a client removed, in that window. The sign-in is refused; before, its
session escaped the disable's revocation (and worked again once the user was enabled), and a removed client
gave a 500 (its row gone under the session's foreign key)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from server.db import db
from server.models import RecoveryCode, SessionFamily, Token, User
from server.services import clients, login, one_step, users, verify
from server.services.actors import Actor
from server.services.recovery_codes import create_recovery_codes
from tests.accounts import (
    PASSWORD,
    Accounts,
    audit_events,
    missing_service,
    register_client,
    until_waiting_for_a_lock,
)


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


def test_a_user_disabled_while_their_password_sign_in_reads_them_gets_no_enroll_session(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user without a factor signs in by password alone (an enroll-only session): disabled between the
    password check and the commit, they get no session. (On SQLite the sign-in holds the write lock there.)"""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            missing_service("TOKENWARD_TEST_DATABASE_URL (PostgreSQL) is not set")
    accounts.create_user("alice")
    real_tokens = login.active_tokens

    def read_then_disable(*args: Any, **kwargs: Any) -> Any:
        found = real_tokens(*args, **kwargs)
        _elsewhere(app, _disable(app, "alice"))
        return found

    monkeypatch.setattr(login, "active_tokens", read_then_disable)
    answer = accounts.client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_credentials"
    [refused] = audit_events(app, action_prefix="login.password")
    assert (refused["result"], refused["reason"]) == ("failure", "user_disabled")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SessionFamily)) == 0


@pytest.mark.parametrize("held", [Token, SessionFamily, RecoveryCode], ids=lambda model: model.__tablename__)
def test_deleting_a_user_waits_for_a_sign_in_that_holds_their_rows(
    app: Flask, accounts: Accounts, held: Any
) -> None:
    """A sign-in locks the user's own rows first (a guess counted on a token, a recovery code spent, a
    refresh's session family), then share-locks the user until it commits. A delete that locked the user
    first and then met those rows in its cascade deadlocked with it (PostgreSQL aborted one: a 503). The
    delete now locks them first, so it waits for the sign-in."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            missing_service("TOKENWARD_TEST_DATABASE_URL (PostgreSQL) is not set")
        phone = accounts.user_with_phone("alice")
        accounts.full_session("alice", phone)  # a session family
        rt = app.extensions["tokenward"]
        user_id = users.get_user(db.session, username="alice").id
        create_recovery_codes(
            db.session, rt, user=users.get_user(db.session, username="alice"), actor=Actor.console()
        )
        db.session.commit()
        url = db.engine.url
    sign_in_engine = create_engine(url)
    errors: list[BaseException] = []

    def delete_alice() -> None:
        try:
            with app.app_context():
                _elsewhere(
                    app, lambda other: users.delete_user(other, rt, username="alice", actor=Actor.console())
                )
        except BaseException as err:  # reported to the test's thread
            errors.append(err)

    try:
        with sign_in_engine.connect() as sign_in:
            sign_in.execute(select(held.id).where(held.user_id == user_id).with_for_update())
            deleting = threading.Thread(target=delete_alice)
            deleting.start()
            until_waiting_for_a_lock(sign_in_engine, deleting)
            sign_in.execute(text("SELECT 1 FROM users WHERE id = :user FOR SHARE"), {"user": user_id})
            sign_in.commit()
        deleting.join(30)
    finally:
        sign_in_engine.dispose()
    assert not deleting.is_alive() and errors == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
