"""Rate limits in a real `tokenward serve --workers 2` with the default storage (no Redis): the configured
limit holds for the node, not per worker."""

from __future__ import annotations

import secrets
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.serve_process import ServeProcess, server_env

pytestmark = pytest.mark.slow

PER_USER_LIMIT = 10
ATTEMPTS = 40
CONNECTIONS = 4  # in parallel, so both workers answer (a login hashes a password: a worker is busy a while)


def test_the_per_user_limit_holds_across_the_workers_of_a_node(tmp_path: Path, database_url: str) -> None:
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        encryption_key=secrets.token_hex(32),
        rate_limits=f"ip=1000/minute user={PER_USER_LIMIT}/minute",
    )
    username = f"flood-{secrets.token_hex(4)}"  # fresh: a PostgreSQL run shares its counters between tests

    def attempt(_: int) -> int:
        response = requests.post(
            server.url("/api/v1/login"),
            json={"username": username, "password": "not the password"},
            timeout=30,
        )
        return response.status_code

    with (
        ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=2) as server,
        ThreadPoolExecutor(max_workers=CONNECTIONS) as pool,
    ):
        statuses = Counter(pool.map(attempt, range(ATTEMPTS)))
        exposition = requests.get(server.url("/metrics"), timeout=30).text
    assert statuses == {401: PER_USER_LIMIT, 429: ATTEMPTS - PER_USER_LIMIT}, (statuses, server.log())
    # /metrics adds up the refusals of both workers (the app is built before they fork: each must still
    # write its own figures to the node's metrics directory, or one worker's share would be missing).
    refused = 'tokenward_ratelimit_refused_total{endpoint="sessions.login_password",limit="user"}'
    assert f"{refused} {float(ATTEMPTS - PER_USER_LIMIT)}" in exposition, exposition
