"""Several `tokenward serve` nodes on one database, the console on the same database, and races between them.

The nodes share the database and the encryption key; each has an instance directory of its own, as separate
machines would. They are started one after the other (the first migrates the database and makes the signing
key) and stopped together.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

from tests.e2e.console_runner import run_console
from tests.e2e.serve_process import ServeProcess, server_env

T = TypeVar("T")
HTTP_TIMEOUT_SECONDS = 30


class Cluster:
    def __init__(self, nodes: list[ServeProcess], env: dict[str, str]) -> None:
        self.nodes, self.env = nodes, env

    def node(self, index: int) -> ServeProcess:
        return self.nodes[index % len(self.nodes)]

    def console(self, *args: str, stdin: str = "") -> str:
        """A console command on the cluster's database; its stdout (it must succeed)."""
        result = run_console(args, env=self.env, stdin=stdin)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def console_json(self, *args: str) -> Any:
        return json.loads(self.console(*args, "--json"))

    def logs(self) -> str:
        return "\n".join(node.log() for node in self.nodes)


@contextmanager
def running_cluster(
    tmp_path: Path, database_url: str, *, nodes: int = 2, **settings: str
) -> Iterator[Cluster]:
    key = secrets.token_hex(32)
    envs = [
        server_env(
            instance_dir=tmp_path / f"node-{index}",
            database_url=database_url,
            encryption_key=key,
            rate_limits="off",
            **settings,
        )
        for index in range(nodes)
    ]
    started: list[ServeProcess] = []
    try:
        for index, env in enumerate(envs):
            started.append(ServeProcess.start(env, log_path=tmp_path / f"node-{index}.log"))
        yield Cluster(started, envs[0])
    finally:
        ServeProcess.stop_all(started)


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs the calls in threads released together by a barrier; their results in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait(timeout=HTTP_TIMEOUT_SECONDS)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def post(url: str, body: dict[str, Any], **options: Any) -> requests.Response:
    return requests.post(url, json=body, timeout=HTTP_TIMEOUT_SECONDS, **options)
