"""A real `tokenward serve` on PostgreSQL through a TCP proxy the test controls: a database that stops
answering, or is gone, gets 503 `database_unavailable` (problem+json, Retry-After) within the configured
timeouts, `/readyz` says so and `/healthz` does not; when the database is back, so is the service.

One server serves the module (in a PostgreSQL schema of its own); each test puts the proxy back to
forwarding and waits for readiness before the next. Without TOKENWARD_TEST_DATABASE_URL these tests are
skipped, as the suite's other PostgreSQL-only tests are.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.accounts import with_search_path
from tests.e2e.serve_process import PASSWORD, OtpToken, ServeProcess, add_user, enroll_token, server_env
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

# Short bounds so that the module stays quick; a hung request would outlast HTTP_TIMEOUT_SECONDS and fail.
OUTAGE_SETTINGS = {"database_connect_timeout": "1", "database_statement_timeout": "1"}
HTTP_TIMEOUT_SECONDS = 20
RECOVERY_SECONDS = 30.0


@dataclass
class Node:
    server: ServeProcess
    proxy: TcpProxy
    username: str
    token: OtpToken

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.server.url(path), json=body, timeout=HTTP_TIMEOUT_SECONDS)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.server.url(path), timeout=HTTP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def own_schema() -> Iterator[str]:
    """A schema of the module's own (the server migrates it): other tests on the worker empty the run's."""
    base_url = os.environ.get("TOKENWARD_TEST_DATABASE_URL")
    if not base_url:
        pytest.skip("TOKENWARD_TEST_DATABASE_URL is not set")
    schema = f"tw_outage_{secrets.token_hex(4)}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(base_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, own_schema: str) -> Iterator[Node]:
    tmp_path = tmp_path_factory.mktemp("database-outage")
    with TcpProxy.in_front_of(own_schema, default_port=5432) as proxy:
        env = server_env(
            instance_dir=tmp_path / "instance",
            database_url=proxy.url_through(own_schema),
            encryption_key=secrets.token_hex(32),
            # On, in the database (the default storage): the counters go through the proxy too.
            rate_limits="ip=1000/minute user=1000/minute",
            **OUTAGE_SETTINGS,
        )
        with ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1) as server:
            add_user(env, "olga")
            token = enroll_token(requests.Session(), server.base_url, "olga")
            yield Node(server, proxy, "olga", token)


@pytest.fixture
def outage(node: Node) -> Iterator[Node]:
    """The node; afterwards the database is reachable again and the node ready."""
    yield node
    node.proxy.forward()
    deadline = time.monotonic() + RECOVERY_SECONDS
    while node.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, node.server.log()
        time.sleep(0.1)  # polling interval


def _assert_database_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def _requests_needing_the_database(node: Node) -> list[requests.Response]:
    """Sign-in (rate-limited: its counters are in the database too), verify, the JWKS and readiness, sent
    together (each waits out the timeouts)."""
    transaction = secrets.token_urlsafe(16)
    calls: list[Callable[[], requests.Response]] = [
        lambda: node.post("/api/v1/login", {"username": node.username, "password": PASSWORD}),
        lambda: node.post("/api/v1/verify", {"transaction_id": transaction, "otp": "123456"}),
        lambda: node.get("/.well-known/jwks.json"),
        lambda: node.get("/readyz"),
    ]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


@pytest.mark.parametrize("fault", ["pause", "refuse"])
def test_a_database_that_hangs_or_is_gone_gets_503s_and_the_node_unready(outage: Node, fault: str) -> None:
    getattr(outage.proxy, fault)()
    for response in _requests_needing_the_database(outage):
        _assert_database_unavailable(response)
    alive = outage.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert "Traceback" not in outage.server.log(None)


def test_the_node_serves_again_once_the_database_is_back(outage: Node) -> None:
    outage.proxy.pause()
    _assert_database_unavailable(outage.get("/readyz"))
    outage.proxy.forward()
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (ready := outage.get("/readyz")).status_code != 200:
        _assert_database_unavailable(ready)
        assert time.monotonic() < deadline, outage.server.log()
        time.sleep(0.1)  # polling interval
    challenge = outage.post("/api/v1/login", {"username": outage.username, "password": PASSWORD})
    assert challenge.status_code == 200, challenge.text
    verified = outage.post(
        "/api/v1/verify",
        {"transaction_id": challenge.json()["transaction_id"], "otp": outage.token.next_hotp()},
    )
    assert verified.status_code == 200, verified.text
