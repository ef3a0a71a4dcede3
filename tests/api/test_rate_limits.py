"""Per-IP and per-user limits on login/verify: 429 problem+json with Retry-After; shared through Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.db import db
from server.http.auth import CSRF_COOKIE, CSRF_HEADER
from server.http.contract import OPERATIONS
from server.http.ratelimits import limited_endpoints
from server.models import AuditEvent
from server.services.ratelimit_storage import DatabaseStorage
from tests.accounts import PASSWORD, Accounts, LoginFormClient, basic, bearer, dispose_app, missing_service


def _app(settings: Settings, clock: FrozenClock, limits: str, storage: str = "memory://") -> Flask:
    app = create_app(
        replace(settings, rate_limits=RateLimits.parse(limits), ratelimit_storage=storage), clock=clock
    )
    app.test_client_class = LoginFormClient
    for storage_in_use in _database_storages(app):
        storage_in_use.reset()  # on PostgreSQL the run's schema outlives the test; SQLite starts empty
    return app


def _database_storages(app: Flask) -> list[DatabaseStorage]:
    limiters = app.extensions.get("limiter", set())
    return [limiter.storage for limiter in limiters if isinstance(limiter.storage, DatabaseStorage)]


@pytest.fixture
def limited(settings: Settings, clock: FrozenClock) -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        for storage in _database_storages(app):
            storage.engine.dispose()
        dispose_app(app)


def _login(client: FlaskClient, username: str, **options: Any) -> Any:
    """A password sign-in by nobody's client: limited per address and per user."""
    return client.post("/api/v1/login", json={"username": username, "password": "not it at all"}, **options)


def _from(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_per_user_limit_answers_429_with_retry_after(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=100/minute user=3/minute")
    limited.append(app)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/api/v1/verify", json={"username": "alice", "otp": "123456"}).status_code == 401
    blocked = client.post("/api/v1/login", json={"username": "alice", "password": "whatever it is"})
    assert blocked.status_code == 429
    assert blocked.mimetype == "application/problem+json"
    assert blocked.json["code"] == "rate_limited"
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    other_user = client.post("/api/v1/verify", json={"username": "bob", "otp": "123456"})
    assert other_user.status_code == 401


def test_per_ip_limit(settings: Settings, clock: FrozenClock, limited: list[Flask]) -> None:
    app = _app(settings, clock, "ip=4/minute")
    limited.append(app)
    client = app.test_client()
    statuses = [_login(client, f"user{i}").status_code for i in range(6)]
    assert statuses[:4] != [429] * 4 and statuses[4:] == [429, 429]
    other_ip = _login(client, "x", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other_ip.status_code != 429


def test_limits_do_not_touch_other_endpoints(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=1/minute")
    limited.append(app)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/.well-known/jwks.json").status_code == 200


def test_every_declared_secret_check_is_limited_whatever_the_blueprint(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=1/minute")
    limited.append(app)
    declared = set(limited_endpoints())
    assert declared == {
        "sessions.login_password",
        "sessions.verify",
        "sessions.passkey_login",
        "web_session.password_login",
        "web_session.verify_answer",
        "web_session.passkey_login",
        "oidc.token",
        "passwords.change_own_password",
    }
    client = app.test_client()
    client.set_cookie(CSRF_COOKIE, "csrf-value")  # the pages' routes check the double submit first
    same_site = {CSRF_HEADER: "csrf-value", "Origin": "http://localhost:5000"}
    client.post("/api/v1/login", json={"username": "nobody", "password": "wrong"})  # spends the one allowed
    for operation in OPERATIONS:
        if operation.rate_limited:  # the per-IP limit is shared by every secret check
            answer = client.post(operation.path, json={}, headers=same_site)
            assert answer.status_code == 429, operation.endpoint


def test_off_disables_limits(accounts: Accounts) -> None:
    for _ in range(30):
        assert accounts.client.post("/api/v1/verify", json={"username": "a", "otp": "1"}).status_code == 401


def test_limits_are_shared_between_nodes_through_redis(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    redis_url = os.environ.get("TOKENWARD_TEST_REDIS_URL") or missing_service(
        "TOKENWARD_TEST_REDIS_URL not set"
    )
    user = f"shared{secrets.token_hex(4)}"  # Redis outlives the test: a fresh name per run
    node_a = _app(settings, clock, "user=4/minute", storage=redis_url)
    node_b = _app(settings, clock, "user=4/minute", storage=redis_url)
    limited.extend([node_a, node_b])
    a, b = node_a.test_client(), node_b.test_client()
    for client in (a, b, a, b):
        assert client.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 401
    assert b.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 429
    assert a.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 429


def test_the_default_storage_is_the_database(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=100/minute user=2/minute", storage=Settings().ratelimit_storage)
    limited.append(app)
    assert _database_storages(app)
    client = app.test_client()
    statuses = [
        client.post("/api/v1/verify", json={"username": "dora", "otp": "1"}).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 429, 429]


@pytest.mark.parametrize("storage", ["database://", "memory://"])
def test_a_flood_from_one_address_does_not_lock_the_user_out_from_another(
    settings: Settings, clock: FrozenClock, limited: list[Flask], storage: str
) -> None:
    """The per-user bucket is per (user, client IP): an attacker's flood uses up only its own."""
    app = _app(settings, clock, "ip=100/minute user=3/minute", storage=storage)
    limited.append(app)
    accounts = Accounts(app, app.test_client(), clock)
    accounts.create_user("alice")
    flood = [
        accounts.client.post(
            "/api/v1/login",
            json={"username": "alice", "password": "guess guess guess"},
            **_from("203.0.113.9"),
        ).status_code
        for _ in range(6)
    ]
    assert flood == [401, 401, 401, 429, 429, 429]
    from_home = accounts.client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD}, **_from("198.51.100.4")
    )
    assert from_home.status_code == 200, from_home.json
    assert from_home.json is not None and from_home.json["status"] == "enroll"


def test_the_per_ip_limit_still_holds_for_every_user(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=4/minute user=100/minute", storage="database://")
    limited.append(app)
    client = app.test_client()
    statuses = [_login(client, f"u{i}", **_from("203.0.113.9")).status_code for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]


@pytest.mark.parametrize("storage", ["database://", "memory://"])
def test_answers_to_a_transaction_count_against_its_user(
    settings: Settings, clock: FrozenClock, limited: list[Flask], storage: str
) -> None:
    """`verify {transaction_id, …}` names no user, but its transaction does: the answers share the user's
    bucket with password logins (the attempt budget of one transaction is not the only bound)."""
    app = _app(settings, clock, "ip=100/minute user=4/minute", storage=storage)
    limited.append(app)
    accounts = Accounts(app, app.test_client(), clock)
    accounts.user_with_phone("alice")  # one login (an enroll-only session): 1 of alice's 4
    transactions = [accounts.login("alice")["transaction_id"] for _ in range(2)]  # 3 of 4
    first = accounts.client.post("/api/v1/verify", json={"transaction_id": transactions[0], "otp": "000000"})
    assert first.status_code == 401  # 4 of 4
    refused = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transactions[1], "otp": "000000"}
    )
    assert refused.status_code == 429 and refused.json is not None and refused.json["code"] == "rate_limited"
    again = accounts.client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert again.status_code == 429
    unknown = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": "no-such-transaction", "otp": "1"}
    )
    assert unknown.status_code == 401  # no owner: only the per-IP limit applies


def _refusal_events(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ratelimit.refused")).all()
        events = [(event.target, event.reason, event.client_ip) for event in rows]
        db.session.remove()
    return events


def _refusals_in_metrics(client: Any, limit: str, endpoint: str = "sessions.verify") -> float:
    text = client.get("/metrics").get_data(as_text=True)
    prefix = f'tokenward_ratelimit_refused_total{{endpoint="{endpoint}",limit="{limit}"}} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


def test_refusals_are_counted_and_audited_once_per_key_and_window(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=6/minute user=2/minute", storage="database://")
    limited.append(app)
    client = app.test_client()
    before = (
        _refusals_in_metrics(client, "user"),
        _refusals_in_metrics(client, "ip", "sessions.login_password"),
    )
    for _ in range(5):  # 2 answered, 3 refused by the per-user limit (the per-IP one is not reached)
        client.post("/api/v1/verify", json={"username": "ghost", "otp": "1"}, **_from("203.0.113.7"))
    for index in range(9):  # 6 answered, 3 refused by the per-IP limit (one try per user)
        _login(client, f"user{index}", **_from("203.0.113.8"))

    assert sorted(_refusal_events(app)) == [
        ("ip 203.0.113.8: 3 refused", "rate_limited", "203.0.113.8"),
        ("user (unknown) from 203.0.113.7: 3 refused", "rate_limited", "203.0.113.7"),
    ]
    after = (
        _refusals_in_metrics(client, "user"),
        _refusals_in_metrics(client, "ip", "sessions.login_password"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (3, 3)


def test_answers_to_a_decoy_count_against_the_name_as_a_real_users_do(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    """Review finding: a decoy had no owner, so its answers skipped the per-user limit, and the request at
    which 429 came told a name with tokens from one without (or from no user at all)."""
    app = _app(settings, clock, "ip=1000/minute user=4/minute", storage="database://")
    limited.append(app)
    accounts = Accounts(app, app.test_client(), clock)
    accounts.user_with_phone("dave")  # one password login: 1 of dave's 4, so the others start there too
    accounts.create_user("bob")
    accounts.client.post("/api/v1/login", json={"username": "bob", "password": PASSWORD})
    accounts.client.post("/api/v1/login", json={"username": "nosuchuser", "password": PASSWORD})

    def statuses(name: str) -> list[int]:
        started = accounts.client.post("/api/v1/verify", json={"username": name})  # 2 of 4
        assert started.status_code == 200, started.json
        transaction_id = started.json["transaction_id"]
        return [started.status_code] + [
            accounts.client.post(
                "/api/v1/verify", json={"transaction_id": transaction_id, "otp": "000000"}
            ).status_code
            for _ in range(3)
        ]

    seen = {name: statuses(name) for name in ("dave", "bob", "nosuchuser")}
    assert seen["dave"] == [200, 401, 401, 429], seen
    assert seen["bob"] == seen["dave"] and seen["nosuchuser"] == seen["dave"], seen


def test_guessing_the_current_password_at_a_password_change_is_limited_per_user(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    """Review finding: a stolen session could try passwords at POST /api/v1/me/password without limit. The
    guesses now share the user's bucket with sign-in (10 a minute by default)."""
    app = _app(settings, clock, "ip=1000/minute user=4/minute", storage="database://")
    limited.append(app)
    accounts = Accounts(app, app.test_client(), clock)
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)

    def change(current: str) -> int:
        body = {"current_password": current, "new_password": "a new and longer passphrase"}
        return accounts.client.post("/api/v1/me/password", json=body, headers=bearer(session)).status_code

    # The counters keep real time: the budget of 4 is shared with the three sign-in requests just made.
    assert [change(f"guess {i}") for i in range(3)] == [401, 429, 429]
    assert change(PASSWORD) == 429  # the right one too, until the window ends


@pytest.mark.parametrize("transaction_id", ["\ud800", "a\udc00\ud800b", "x" * 65, "not/an/id"])
def test_a_transaction_id_that_cannot_be_one_is_refused_before_its_owner_is_looked_up(
    settings: Settings, clock: FrozenClock, limited: list[Flask], transaction_id: str
) -> None:
    """The per-user limit looks up a transaction's owner before the body is validated: a lone surrogate
    there was a 500 (it cannot be encoded for the database)."""
    app = _app(settings, clock, "ip=100/minute user=100/minute")
    limited.append(app)
    client = app.test_client()
    client.set_cookie(CSRF_COOKIE, "csrf-value")
    same_site = {CSRF_HEADER: "csrf-value", "Origin": "http://localhost:5000"}
    for path in ("/api/v1/verify", "/web/session/verify"):
        answer = client.post(
            path, json={"transaction_id": transaction_id, "otp": "123456"}, headers=same_site
        )
        assert answer.status_code == 422, (path, answer.json)
        assert answer.json["code"] == "validation_error"


def test_the_headers_describe_the_limit_that_refuses_first(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=10/minute ip=100/hour user=3/minute")
    limited.append(app)
    client = app.test_client()
    first = _login(client, "alice")
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("3", "2")
    other = _login(client, "bob")
    assert (other.headers["X-RateLimit-Limit"], other.headers["X-RateLimit-Remaining"]) == ("3", "2")
    for index in range(7):
        _login(client, f"user{index}")
    # Nine answers from this address: one left per minute (the hour has 91), for a new name as well.
    fresh = _login(client, "carol")
    assert (fresh.headers["X-RateLimit-Limit"], fresh.headers["X-RateLimit-Remaining"]) == ("10", "0")
    refused = _login(client, "dave")
    assert refused.status_code == 429 and refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_a_registered_clients_calls_are_limited_per_user_not_per_address(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    """The client's address is its application's server, which speaks for all of its users: a red-team run
    shut every user of an application out by submitting its login form 60 times with made-up names. Wrong
    client credentials still count against the address."""
    app = _app(settings, clock, "ip=4/minute user=2/minute")
    limited.append(app)
    client = app.test_client()  # as the application's login form: its client credentials on every call
    statuses = [
        client.post("/api/v1/verify", json={"username": f"user{i}", "otp": "1"}).status_code for i in range(8)
    ]
    assert statuses == [401] * 8
    per_user = [
        client.post("/api/v1/verify", json={"username": "alice", "otp": "1"}).status_code for _ in range(3)
    ]
    assert per_user == [401, 401, 429]
    wrong = basic("not-a-client", "nor its secret")
    guesses = [
        client.post("/api/v1/verify", json={"username": f"guess{i}", "otp": "1"}, headers=wrong).status_code
        for i in range(6)
    ]
    assert guesses == [401] * 4 + [429] * 2
