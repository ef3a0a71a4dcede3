"""Per-IP and per-user limits on login/verify: 429 problem+json with Retry-After; shared through Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.db import db
from tests.accounts import Accounts, LoginFormClient


def _app(settings: Settings, clock: FrozenClock, limits: str, storage: str = "memory://") -> Flask:
    app = create_app(
        replace(settings, rate_limits=RateLimits.parse(limits), ratelimit_storage=storage), clock=clock
    )
    app.test_client_class = LoginFormClient
    return app


@pytest.fixture
def limited(settings: Settings, clock: FrozenClock) -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


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
    statuses = [
        client.post("/api/v1/verify", json={"username": f"user{i}", "otp": "1"}).status_code for i in range(6)
    ]
    assert statuses[:4] != [429] * 4 and statuses[4:] == [429, 429]
    other_ip = client.post(
        "/api/v1/verify", json={"username": "x", "otp": "1"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other_ip.status_code != 429


def test_limits_do_not_touch_other_endpoints(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    app = _app(settings, clock, "ip=1/minute")
    limited.append(app)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/.well-known/jwks.json").status_code == 200


def test_off_disables_limits(accounts: Accounts) -> None:
    for _ in range(30):
        assert accounts.client.post("/api/v1/verify", json={"username": "a", "otp": "1"}).status_code == 401


@pytest.mark.skipif("TOKENWARD_TEST_REDIS_URL" not in os.environ, reason="TOKENWARD_TEST_REDIS_URL not set")
def test_limits_are_shared_between_nodes_through_redis(
    settings: Settings, clock: FrozenClock, limited: list[Flask]
) -> None:
    redis_url = os.environ["TOKENWARD_TEST_REDIS_URL"]
    user = f"shared{secrets.token_hex(4)}"  # Redis outlives the test: a fresh name per run
    node_a = _app(settings, clock, "user=4/minute", storage=redis_url)
    node_b = _app(settings, clock, "user=4/minute", storage=redis_url)
    limited.extend([node_a, node_b])
    a, b = node_a.test_client(), node_b.test_client()
    for client in (a, b, a, b):
        assert client.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 401
    assert b.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 429
    assert a.post("/api/v1/verify", json={"username": user, "otp": "1"}).status_code == 429
