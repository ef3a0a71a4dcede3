"""A password check (Argon2id, or a directory bind) runs with no database transaction open: on SQLite an open
one holds the node's write lock, and every other sign-in waited for it while the hash ran (a red-team run saw
legitimate sign-ins wait up to 31 s under a flood of wrong passwords)."""

from __future__ import annotations

import base64
import sqlite3
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from server.db import db
from server.directories import local
from tests.accounts import PASSWORD, Accounts, login_form_credentials


@pytest.mark.parametrize("password", [PASSWORD, "not the password"])
def test_the_write_lock_is_free_while_the_password_is_checked(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    accounts.create_user("alice")
    seen: list[bool] = []
    real_check = local.password_matches

    def observed_check(*args: Any) -> bool:
        seen.append(db.session().in_transaction())
        if db.engine.dialect.name == "sqlite":  # another writer gets the lock at once
            other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            other.close()
        return real_check(*args)

    monkeypatch.setattr(local, "password_matches", observed_check)
    answer = accounts.client.post("/api/v1/login", json={"username": "alice", "password": password})
    assert answer.status_code == (200 if password == PASSWORD else 401), answer.json
    assert seen == [False]


def test_a_client_removed_while_its_users_password_is_checked_is_refused(
    app: Flask, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-step form with a password: the client was read before the hash, outside any transaction then;
    one removed meanwhile is refused as an unknown client (it was a 500 reading the gone row)."""
    phone = accounts.user_with_phone("alice")
    headers = login_form_credentials(app)
    client_id = base64.b64decode(headers["Authorization"].split()[1]).decode().split(":")[0]
    real_check = local.password_matches

    def check_while_the_client_is_removed(*args: Any) -> bool:
        engine = create_engine(db.engine.url)  # an administrator elsewhere
        try:
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM clients WHERE id = :id"), {"id": client_id})
        finally:
            engine.dispose()
        return real_check(*args)

    monkeypatch.setattr(local, "password_matches", check_while_the_client_is_removed)
    answer = accounts.client.post(
        "/api/v1/verify",
        json={"username": "alice", "otp": phone.code(accounts.clock.now()), "password": PASSWORD},
        headers=headers,
    )
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_client"
