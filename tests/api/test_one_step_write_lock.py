"""A one-step verify reads the client and the user before it takes SQLite's write lock
(server.db.begin_reads), writes in one transaction and signs the access token after the commit: the node's
other sign-ins wait only for the writes. A token disabled while it was being read is not tried."""

from __future__ import annotations

import sqlite3
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, event, text

from server.db import db
from server.services import one_step, sessions
from tests.accounts import Accounts, login_form_credentials


def _write_elsewhere(statement: str, parameters: dict[str, Any]) -> None:
    """Another writer, committing at once; on SQLite one that does not wait for the lock (timeout 0)."""
    if db.engine.dialect.name == "sqlite":
        other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
        try:
            other.execute(statement.replace(":token_id", "?"), tuple(parameters.values()))
        finally:
            other.close()
    else:
        engine = create_engine(db.engine.url)  # not the app's: its statements are observed
        try:
            with engine.begin() as connection:
                connection.execute(text(statement), parameters)
        finally:
            engine.dispose()


def _counter(accounts: Accounts, token_id: str) -> int:
    with accounts.app.app_context():
        query = text("SELECT counter FROM tokens WHERE id = :token_id")
        return int(db.session.execute(query, {"token_id": token_id}).scalar_one())


def test_the_client_and_user_are_read_before_the_write_lock_and_the_token_signed_after_the_commit(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    headers = login_form_credentials(accounts.app)
    first = accounts.client.post(  # the node's signing key is read once, then kept (KeyRing)
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(0)}, headers=headers
    )
    assert first.status_code == 200, first.json
    timeline: list[str] = []
    real_find, real_encode = one_step.find_user_with_tokens, sessions.jwt.encode

    def observed_find(*args: Any, **kwargs: Any) -> Any:
        found = real_find(*args, **kwargs)
        # Another process's writer gets the lock while the user is read (SQLite; no lock on PostgreSQL).
        _write_elsewhere(
            "UPDATE tokens SET description = 'elsewhere' WHERE id = :token_id", {"token_id": "-"}
        )
        return found

    def observed_encode(*args: Any, **kwargs: Any) -> str:
        timeline.append("sign")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(one_step, "find_user_with_tokens", observed_find)
    monkeypatch.setattr(sessions.jwt, "encode", observed_encode)
    with accounts.app.app_context():
        engine = db.engine

    def on_statement(statement: str) -> None:
        words = statement.upper().split()
        timeline.append(" ".join(words) if words[0] == "BEGIN" else words[0])

    def on_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        on_statement(statement)

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        # What SQLite itself runs, BEGIN and COMMIT included (server.db sends those on its connection).
        dbapi_connection.set_trace_callback(on_statement)

    def on_checkin(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(None)

    def on_commit(_conn: Any) -> None:
        timeline.append("commit")

    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        observers = [("checkout", on_checkout), ("checkin", on_checkin), ("commit", on_commit)]
    else:
        observers = [("before_cursor_execute", on_cursor_execute), ("commit", on_commit)]
    for name, observer in observers:
        event.listen(engine, name, observer)
    try:
        answer = accounts.client.post(
            "/api/v1/verify", json={"username": "alice", "otp": phone.code(0)}, headers=headers
        )
    finally:
        for name, observer in observers:
            event.remove(engine, name, observer)
    assert answer.status_code == 200, answer.json
    assert timeline[-2:] == ["commit", "sign"]
    # The guess counted, the counter consumed, the user and client confirmed (share-locked); the audit,
    # family and refresh-token rows.
    writes = ["UPDATE", "UPDATE", "SELECT", "INSERT", "INSERT", "INSERT"]
    if sqlite:
        reads = ["BEGIN", "SELECT", "SELECT", "COMMIT"]  # the client, the user and tokens; no lock taken
        # COMMIT sent before the writer queue lets the next writer in (server.db.queue_sqlite_writers).
        assert timeline == [*reads, "BEGIN IMMEDIATE", *writes, "COMMIT", "commit", "sign"]
    else:
        assert timeline == ["SELECT", "SELECT", *writes, "commit", "sign"]
    claims = jwt.decode(answer.json["access_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "alice"


def test_a_token_disabled_while_it_was_read_is_not_tried(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = accounts.user_with_phone("bob", type="hotp")
    headers = login_form_credentials(accounts.app)
    real_find = one_step.find_user_with_tokens

    def disabling_find(*args: Any, **kwargs: Any) -> Any:
        found = real_find(*args, **kwargs)
        _write_elsewhere(
            "UPDATE tokens SET state = 'disabled' WHERE id = :token_id", {"token_id": phone.token_id}
        )
        return found

    monkeypatch.setattr(one_step, "find_user_with_tokens", disabling_find)
    counter_before = _counter(accounts, phone.token_id)
    answer = accounts.client.post(
        "/api/v1/verify", json={"username": "bob", "otp": phone.code(0)}, headers=headers
    )
    assert answer.status_code == 401, answer.json
    assert answer.json["code"] == "invalid_otp"  # a caller without a password learns no more than that
    assert _counter(accounts, phone.token_id) == counter_before  # the code was not consumed
