"""gunicorn hooks for `tokenward serve` (loaded with `--config python:server.gunicorn_config`)."""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from server import gunicorn_problems

gunicorn_problems.install()  # in the master, before any worker forks: its error pages become problem+json


def child_exit(_server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not linger in the shared metrics directory."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def when_ready(_server: Any) -> None:
    """The last line of the start: the address to open (the public URL, which may differ from the bound
    address: `localhost` for a loopback or wildcard bind, or the proxy's https name)."""
    from server.config import Settings

    print(f"Tokenward is ready: open {Settings.from_env().public_url}/", flush=True)


def post_fork(_server: Any, worker: Any) -> None:
    """The app was built before the fork (preloaded): a worker must not share the master's pooled
    connections, if it opened any. `close=False`: they stay open for the master, and the worker's pools
    start empty. (Redis connection pools notice the fork themselves.)"""
    app = worker.app.wsgi()
    engines = []
    if "sqlalchemy" in app.extensions:
        with app.app_context():
            engines += app.extensions["sqlalchemy"].engines.values()
    for limiter in app.extensions.get("limiter", ()):
        engines.append(getattr(limiter.storage, "engine", None))  # the database:// rate-limit storage
    for engine in engines:
        if engine is not None:
            engine.dispose(close=False)
