"""A real `tokenward serve` whose rate limits are counted in Redis, through a TCP proxy the test controls:
with Redis hanging or unreachable the limited endpoints fail closed (503 `rate_limit_store_unavailable`,
problem+json, Retry-After: nobody signs in uncounted), the others keep working, `/readyz` says so and
`/healthz` does not; when Redis is back, so is sign-in.

One server serves the module (its database is a SQLite file: the database is not what fails here). Without
TOKENWARD_TEST_REDIS_URL these tests are skipped, as the suite's other Redis test is.
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
import redis
import requests

from tests.e2e.serve_process import PASSWORD, ServeProcess, add_user, enroll_token, server_env
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

HTTP_TIMEOUT_SECONDS = 20  # far above the server's bound (1 s); a hung request fails the test
RECOVERY_SECONDS = 30.0


@dataclass
class Node:
    server: ServeProcess
    proxy: TcpProxy
    username: str

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.server.url(path), json=body, timeout=HTTP_TIMEOUT_SECONDS)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.server.url(path), timeout=HTTP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("TOKENWARD_TEST_REDIS_URL")
    if not url:
        pytest.skip("TOKENWARD_TEST_REDIS_URL is not set")
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        client.ping()  # a set URL that cannot be reached fails here, with the reason
    return url


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Node]:
    tmp_path = tmp_path_factory.mktemp("redis-outage")
    with TcpProxy.in_front_of(redis_url, default_port=6379) as proxy:
        env = server_env(
            instance_dir=tmp_path / "instance",
            database_url=f"sqlite:///{tmp_path / 'tokenward.db'}",
            encryption_key=secrets.token_hex(32),
            ratelimit_storage=proxy.url_through(redis_url),
            rate_limits="ip=1000/minute user=1000/minute",
            ratelimit_storage_timeout="1",
        )
        with ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1) as server:
            username = f"rosa-{secrets.token_hex(4)}"  # Redis outlives the test: a fresh name per run
            add_user(env, username)
            enroll_token(requests.Session(), server.base_url, username)
            yield Node(server, proxy, username)


@pytest.fixture
def outage(node: Node) -> Iterator[Node]:
    """The node; afterwards Redis is reachable again and the node ready."""
    yield node
    node.proxy.forward()
    deadline = time.monotonic() + RECOVERY_SECONDS
    while node.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, node.server.log()
        time.sleep(0.1)  # polling interval


def _assert_store_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limit_store_unavailable"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("fault", ["pause", "refuse"])
def test_sign_in_fails_closed_while_redis_hangs_or_is_gone(outage: Node, fault: str) -> None:
    getattr(outage.proxy, fault)()
    calls: list[Callable[[], requests.Response]] = [
        lambda: outage.post("/api/v1/login", {"username": outage.username, "password": PASSWORD}),
        lambda: outage.post("/api/v1/login", {"username": outage.username, "password": "not the password"}),
        lambda: outage.post("/api/v1/verify", {"transaction_id": secrets.token_urlsafe(16), "otp": "123456"}),
        lambda: outage.get("/readyz"),
    ]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for response in pool.map(lambda call: call(), calls):
            _assert_store_unavailable(response)
    # What no limit guards goes on: liveness, the JWKS resource servers need.
    assert outage.get("/healthz").status_code == 200
    assert outage.get("/.well-known/jwks.json").status_code == 200
    assert "Traceback" not in outage.server.log(None)


def test_sign_in_works_again_once_redis_is_back(outage: Node) -> None:
    outage.proxy.refuse()
    _assert_store_unavailable(
        outage.post("/api/v1/login", {"username": outage.username, "password": PASSWORD})
    )
    outage.proxy.forward()
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (ready := outage.get("/readyz")).status_code != 200:
        _assert_store_unavailable(ready)
        assert time.monotonic() < deadline, outage.server.log()
        time.sleep(0.1)  # polling interval
    challenge = outage.post("/api/v1/login", {"username": outage.username, "password": PASSWORD})
    assert (challenge.status_code, challenge.json()["status"]) == (200, "second_factor"), challenge.text
