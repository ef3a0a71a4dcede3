"""A directory that is down, slow or partly gone: failover to the next URL, else a clear 503 problem with
Retry-After, audited, nothing counted against the tokens, no fall-back, none of the directory's text."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from server.config import Settings
from server.db import db
from server.models import AuditEvent, Token
from tests.accounts import Accounts, dispose_app
from tests.directories.conftest import with_directory
from tests.directories.slapd import Slapd, free_port, password_of


def _login(accounts: Accounts, username: str = "alice") -> object:
    return accounts.client.post(
        "/api/v1/login", json={"username": username, "password": password_of(username)}
    )


def _assert_unavailable(response: object) -> None:
    assert response.status_code == 503, response.json  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["code"] == "directory_unavailable"
    assert response.headers["Retry-After"] == "30"  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    text = response.get_data(as_text=True).lower()  # type: ignore[attr-defined]
    for leak in ("ldap", "socket", "refused", "dc=example", "127.0.0.1", "timed out"):
        assert leak not in text


def test_stopped_mid_run_gives_503_no_lockout_then_recovers(
    accounts: Accounts, app: Flask, slapd: Slapd
) -> None:
    phone = accounts.enroll_phone(_login(accounts).json)  # type: ignore[attr-defined]
    assert _login(accounts).json["status"] == "second_factor"  # type: ignore[attr-defined]
    slapd.stop()

    for _ in range(12):  # more than the lockout threshold
        _assert_unavailable(_login(accounts))
    one_step = accounts.client.post(
        "/api/v1/verify",
        json={"username": "alice", "password": password_of("alice"), "otp": phone.code(accounts.clock.now())},
    )
    _assert_unavailable(one_step)

    with app.app_context():
        token = db.session.get(Token, phone.token_id)
        assert token is not None
        assert (token.fail_count, token.locked_until, token.state) == (0, None, "active")
        audited = [(e.action, e.reason) for e in db.session.query(AuditEvent).filter_by(result="failure")]
        assert audited.count(("login.password", "directory_unavailable")) == 13
        assert audited.count(("verify.otp", "directory_unavailable")) == 1
    slapd.start()  # same data, same port: the pooled connection is stale, a fresh one is used
    assert _login(accounts).json["status"] == "second_factor"  # type: ignore[attr-defined]


def test_a_dead_first_url_fails_over_to_the_second(
    tmp_path: Path, settings: Settings, slapd: Slapd, service_password_file: Path
) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    failover = with_directory(settings, url=f"{dead} {slapd.url}", password_file=service_password_file)
    from server.app import create_app

    app = create_app(failover)
    with app.app_context():
        directory = app.extensions["tokenward"].directories.external
        found = directory.check_password(username="alice", password=password_of("alice"), known=None)
        assert found is not None and found.username == "alice"
        assert directory.check_password(username="alice", password="wrong", known=None) is None
        directory.close()
    dispose_app(app)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a directory hung or behind a broken link."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_directory_that_never_answers_gives_503_within_the_timeout(
    tmp_path: Path, settings: Settings, silent_port: int, service_password_file: Path
) -> None:
    from server.app import create_app

    hung = with_directory(
        settings, url=f"ldap://127.0.0.1:{silent_port}", password_file=service_password_file, ldap_timeout=1
    )
    app = create_app(hung)
    client = app.test_client()
    started = time.monotonic()
    response = client.post("/api/v1/login", json={"username": "alice", "password": password_of("alice")})
    elapsed = time.monotonic() - started
    _assert_unavailable(response)
    assert elapsed < 10  # bounded by the timeout (one server, a few operations), not hung
    dispose_app(app)
