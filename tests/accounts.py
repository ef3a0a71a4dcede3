"""Test accounts made through the real services and API: users, enrolled phone tokens, signed-in sessions."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, MetaData, create_engine, select, text

from server.clock import FrozenClock
from server.db import db
from server.models import AuditEvent
from server.services import clients, users
from server.services.audit import Actor

PASSWORD = "correct horse battery"


@dataclass
class PhoneToken:
    """What a phone app holds after scanning the QR code."""

    token_id: str
    secret: str  # base32
    type: str = "totp"
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    counter: int = 0

    def code(self, at: float) -> str:
        digest = getattr(hashlib, self.algorithm.lower())
        if self.type == "hotp":
            value = pyotp.HOTP(self.secret, digits=self.digits, digest=digest).at(self.counter)
            self.counter += 1
            return value
        return pyotp.TOTP(self.secret, digits=self.digits, digest=digest, interval=self.period).at(int(at))

    @property
    def key(self) -> bytes:
        return base64.b32decode(self.secret + "=" * (-len(self.secret) % 8))


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def login_form_credentials(app: Flask) -> dict[str, str]:
    """The Basic header of a registered client `test-app-…` (made on first use), as a login form sends."""
    if "test_app_client" not in app.extensions:
        with app.app_context():
            # A name of its own per app: apps of one test may share a database (two nodes).
            name = f"test-app-{secrets.token_hex(4)}"
            created = clients.add_client(
                db.session, app.extensions["tokenward"], name=name, actor=Actor.console()
            )
            app.extensions["test_app_client"] = basic(created.client.id, created.secret)
    return app.extensions["test_app_client"]  # type: ignore[no-any-return]


def register_client(app: Flask, name: str, **options: Any) -> tuple[str, dict[str, str]]:
    """A registered client made through the service (`options` as `clients.add_client` takes them): its
    client_id and the Basic header of its credentials."""
    with app.app_context():
        created = clients.add_client(
            db.session, app.extensions["tokenward"], name=name, actor=Actor.console(), **options
        )
        return created.client.id, basic(created.client.id, created.secret)


def audit_events(app: Flask, *, action_prefix: str = "") -> list[dict[str, str]]:
    """The audit log, oldest first, as (action, target, result, reason) dicts."""
    with app.app_context():
        events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
        return [
            {"action": e.action, "target": e.target, "result": e.result, "reason": e.reason}
            for e in events
            if e.action.startswith(action_prefix)
        ]


class LoginFormClient(FlaskClient):
    """The test client, as another application's login form: a `POST /api/v1/verify` that names a username
    (one-step verify, or `verify {username}`) and carries no Authorization header (or a Bearer one, which
    verify ignores) gets the credentials of the registered client `test-app`. Tests of client
    authentication itself send their own header (an empty one for none)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path")
        body, headers = kwargs.get("json"), dict(kwargs.get("headers") or {})
        names_user = isinstance(body, dict) and "username" in body and "transaction_id" not in body
        given = next((value for name, value in headers.items() if name.lower() == "authorization"), None)
        if path == "/api/v1/verify" and names_user and (given is None or given.startswith("Bearer ")):
            kwargs["headers"] = {**headers, **login_form_credentials(self.application)}
        return super().open(*args, **kwargs)


class Accounts:
    def __init__(self, app: Flask, client: FlaskClient, clock: FrozenClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    def create_user(
        self, username: str = "alice", *, password: str | None = PASSWORD, role: str = "user"
    ) -> str:
        with self.app.app_context():
            users.create_user(
                db.session,
                self.app.extensions["tokenward"],
                username=username,
                password=password,
                role=role,
                actor=Actor.console(),
            )
        return username

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post("/api/v1/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        return response.json  # type: ignore[return-value]

    def enroll_session(self, username: str) -> dict[str, Any]:
        answer = self.login(username)
        assert answer["status"] == "enroll", answer
        return answer

    def enroll_phone(self, session: dict[str, Any], **options: Any) -> PhoneToken:
        """Enrolls and activates a TOTP/HOTP token; the clock moves one period on so the activation code is
        not the next login's code."""
        options.setdefault("type", "totp")
        response = self.client.post("/api/v1/tokens", json=options, headers=bearer(session))
        assert response.status_code == 201, response.json
        body = response.json
        assert body is not None
        phone = PhoneToken(
            body["id"],
            body["secret"],
            options["type"],
            options.get("algorithm", "SHA1"),
            options.get("digits", 6),
            options.get("period", 30),
        )
        activated = self.client.post(
            f"/api/v1/tokens/{phone.token_id}/activate",
            json={"otp": phone.code(self.clock.now())},
            headers=bearer(session),
        )
        assert activated.status_code == 200, activated.json
        self.clock.advance(phone.period)
        return phone

    def user_with_phone(self, username: str = "alice", *, role: str = "user", **options: Any) -> PhoneToken:
        self.create_user(username, role=role)
        return self.enroll_phone(self.enroll_session(username), **options)

    def full_session(self, username: str, phone: PhoneToken) -> dict[str, Any]:
        challenge = self.login(username)
        assert challenge["status"] == "second_factor", challenge
        response = self.client.post(
            "/api/v1/verify",
            json={"transaction_id": challenge["transaction_id"], "otp": phone.code(self.clock.now())},
        )
        assert response.status_code == 200, response.json
        self.clock.advance(phone.period)
        return response.json  # type: ignore[return-value]

    def admin_session(self, username: str = "root") -> dict[str, Any]:
        phone = self.user_with_phone(username, role="admin")
        return self.full_session(username, phone)


def dispose_app(app: Flask) -> None:
    """Closes an app's database connections: its own engines and the `database://` rate-limit storage's (a
    connection left to the garbage collector warns, and warnings are errors here)."""
    for limiter in app.extensions.get("limiter", set()):
        engine = getattr(limiter.storage, "engine", None)
        if engine is not None:
            engine.dispose()
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def missing_service(reason: str) -> NoReturn:
    """A test whose real server (PostgreSQL, Redis) is not configured: under CI (`CI` set, as `.ci/run` runs)
    that is a failure; on a developer's machine without the server the test is skipped, saying which
    variable would run it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run this test against the real server")
    pytest.skip(reason)


@contextmanager
def own_postgres_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A PostgreSQL schema of a module's own (its servers migrate it), as a URL, dropped at the end: other
    tests on the same worker empty the run's schema."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(base_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def until_waiting_for_a_lock(engine: Engine, thread: threading.Thread) -> None:
    """PostgreSQL: until another backend waits for a lock (or `thread` ends), asked on a connection of its
    own: a transaction sees the activity view as it was at its first look."""
    deadline = time.monotonic() + 30
    with engine.connect() as observer:
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = observer.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
            observer.rollback()
            if waiting:
                return
            time.sleep(0.02)  # polling the server's view, not a wait for the other side


def everything_stored(database_url: str) -> str:
    """Every row of every table of a database, as text (to show a secret is stored nowhere in the clear)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = MetaData()
            tables.reflect(connection)
            return "\n".join(
                repr(row) for table in tables.sorted_tables for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()
