"""A real `tokenward serve` whose PostgreSQL and Redis (rate limits) sit behind TCP proxies the test controls.

- A database that stops answering, or is gone, gets 503 `database_unavailable` (problem+json, Retry-After)
  within the configured timeouts; `/readyz` says so, `/healthz` does not; the node recovers by itself.
- With Redis hanging or gone, the rate-limited endpoints fail closed (503 `rate_limit_store_unavailable`:
  nobody signs in uncounted) while the others keep working; the node recovers by itself.

One server serves the module: on PostgreSQL (a schema of its own) when TOKENWARD_TEST_DATABASE_URL is set,
else on a SQLite file; with Redis when TOKENWARD_TEST_REDIS_URL is set. Each test puts its proxy back to
forwarding and waits for readiness. The PostgreSQL tests are skipped without that URL and the Redis tests
without theirs, as the suite's other PostgreSQL-only and Redis tests are.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests

from tests.accounts import missing_service, own_postgres_schema
from tests.e2e.serve_process import PASSWORD, OtpToken, ServeProcess, add_user, enroll_token, server_env
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

# Short bounds so that the module stays quick; a hung request would outlast HTTP_TIMEOUT_SECONDS and fail.
OUTAGE_SETTINGS = {
    "database_connect_timeout": "1",
    "database_statement_timeout": "1",
    "ratelimit_storage_timeout": "1",
}
HTTP_TIMEOUT_SECONDS = 20
RECOVERY_SECONDS = 30.0


@dataclass
class Node:
    server: ServeProcess
    database: TcpProxy | None  # in front of PostgreSQL, when the node uses it
    redis: TcpProxy | None  # in front of Redis, when the node counts its limits there
    username: str
    token: OtpToken

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.server.url(path), json=body, timeout=HTTP_TIMEOUT_SECONDS)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.server.url(path), timeout=HTTP_TIMEOUT_SECONDS)

    def await_ready(self, *, unready_code: str) -> None:
        """Polls /readyz until 200; meanwhile it must answer the expected 503."""
        deadline = time.monotonic() + RECOVERY_SECONDS
        while (ready := self.get("/readyz")).status_code != 200:
            assert_unavailable(ready, unready_code)
            assert time.monotonic() < deadline, self.server.log()
            time.sleep(0.1)  # polling interval


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    postgresql = os.environ.get("TOKENWARD_TEST_DATABASE_URL")
    redis_url = os.environ.get("TOKENWARD_TEST_REDIS_URL")
    if not postgresql and not redis_url:
        missing_service("neither TOKENWARD_TEST_DATABASE_URL nor TOKENWARD_TEST_REDIS_URL is set")
    tmp_path = tmp_path_factory.mktemp("outages")
    # On; counted in the database (through its proxy) or in Redis (through its own).
    settings = {**OUTAGE_SETTINGS, "rate_limits": "ip=1000/minute user=1000/minute"}
    with ExitStack() as stack:
        database_proxy = redis_proxy = None
        database_url = f"sqlite:///{tmp_path / 'tokenward.db'}"
        if postgresql:
            schema_url = stack.enter_context(own_postgres_schema(postgresql, "tw_outage"))
            database_proxy = stack.enter_context(TcpProxy.in_front_of(schema_url, default_port=5432))
            database_url = database_proxy.url_through(schema_url)
        if redis_url:
            with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
                client.ping()  # a set URL that cannot be reached fails here, with the reason
            redis_proxy = stack.enter_context(TcpProxy.in_front_of(redis_url, default_port=6379))
            settings["ratelimit_storage"] = redis_proxy.url_through(redis_url)
        env = server_env(
            instance_dir=tmp_path / "instance",
            database_url=database_url,
            encryption_key=secrets.token_hex(32),
            **settings,
        )
        server = stack.enter_context(ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1))
        username = f"olga-{secrets.token_hex(4)}"  # Redis outlives the test: a fresh name per run
        add_user(env, username)
        token = enroll_token(requests.Session(), server.base_url, username)
        yield Node(server, database_proxy, redis_proxy, username, token)


@pytest.fixture
def database(node: Node) -> Iterator[TcpProxy]:
    """The proxy in front of PostgreSQL; afterwards forwarding again, and the node ready."""
    if node.database is None:
        missing_service("TOKENWARD_TEST_DATABASE_URL is not set")
    yield node.database
    node.database.forward()
    node.await_ready(unready_code="database_unavailable")


@pytest.fixture
def redis_store(node: Node) -> Iterator[TcpProxy]:
    """The proxy in front of Redis; afterwards forwarding again, and the node ready."""
    if node.redis is None:
        missing_service("TOKENWARD_TEST_REDIS_URL is not set")
    yield node.redis
    node.redis.forward()
    node.await_ready(unready_code="rate_limit_store_unavailable")


def assert_unavailable(response: requests.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert int(response.headers["Retry-After"]) > 0


def _all_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Sent together: each may wait out the server's timeouts."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _sign_in(node: Node, password: str = PASSWORD) -> requests.Response:
    return node.post("/api/v1/login", {"username": node.username, "password": password})


@pytest.mark.parametrize("fault", ["pause", "refuse"])
def test_a_database_that_hangs_or_is_gone_gets_503s_and_the_node_unready(
    node: Node, database: TcpProxy, fault: str
) -> None:
    getattr(database, fault)()
    answers = _all_at_once(
        [
            lambda: _sign_in(node),
            lambda: node.post(
                "/api/v1/verify", {"transaction_id": secrets.token_urlsafe(16), "otp": "123456"}
            ),
            lambda: node.get("/.well-known/jwks.json"),
            lambda: node.get("/readyz"),
        ]
    )
    for response in answers:
        assert_unavailable(response, "database_unavailable")
    alive = node.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert "Traceback" not in node.server.log(None)


def test_the_node_serves_again_once_the_database_is_back(node: Node, database: TcpProxy) -> None:
    database.pause()
    assert_unavailable(node.get("/readyz"), "database_unavailable")
    database.forward()
    node.await_ready(unready_code="database_unavailable")
    challenge = _sign_in(node)
    assert challenge.status_code == 200, challenge.text
    answer = {"transaction_id": challenge.json()["transaction_id"], "otp": node.token.next_hotp()}
    verified = node.post("/api/v1/verify", answer)
    assert verified.status_code == 200, verified.text


@pytest.mark.parametrize("fault", ["pause", "refuse"])
def test_sign_in_fails_closed_while_redis_hangs_or_is_gone(
    node: Node, redis_store: TcpProxy, fault: str
) -> None:
    getattr(redis_store, fault)()
    answers = _all_at_once(
        [
            lambda: _sign_in(node),
            lambda: _sign_in(node, "not the password"),
            lambda: node.post(
                "/api/v1/verify", {"transaction_id": secrets.token_urlsafe(16), "otp": "123456"}
            ),
            lambda: node.get("/readyz"),
        ]
    )
    for response in answers:
        assert_unavailable(response, "rate_limit_store_unavailable")
    # What no limit guards goes on: liveness, the JWKS resource servers need.
    assert node.get("/healthz").status_code == 200
    assert node.get("/.well-known/jwks.json").status_code == 200
    assert "Traceback" not in node.server.log(None)


def test_sign_in_works_again_once_redis_is_back(node: Node, redis_store: TcpProxy) -> None:
    redis_store.refuse()
    assert_unavailable(_sign_in(node), "rate_limit_store_unavailable")
    redis_store.forward()
    node.await_ready(unready_code="rate_limit_store_unavailable")
    challenge = _sign_in(node)
    assert (challenge.status_code, challenge.json()["status"]) == (200, "second_factor"), challenge.text
