"""Bounded waits on PostgreSQL: a connect timeout, a statement timeout the server enforces, and a deadline
on every answer the client waits for.

`statement_timeout` stops a slow statement on a server that still answers; it cannot help when the server
(or the network) stops answering altogether, because the connection stays open and the kernel acknowledges
every byte. So each psycopg wait also gets a client-side deadline: past it the connection is closed (the pool
then discards it, as a disconnect) and the statement fails with psycopg's `OperationalError`, which the HTTP
layer answers as 503 `database_unavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, event

from server.config import DatabaseTimeouts

_ceiling: ContextVar[float | None] = ContextVar("database_wait_ceiling", default=None)


@contextmanager
def shorter_database_waits(seconds: float) -> Iterator[None]:
    """Within the block, no answer is awaited longer than `seconds` (readiness checks)."""
    token = _ceiling.set(seconds)
    try:
        yield
    finally:
        _ceiling.reset(token)


def deadline(*limits: float | None) -> float | None:
    present = [limit for limit in (*limits, _ceiling.get()) if limit is not None]
    return min(present) if present else None


def bound_database_waits(engine: Engine, timeouts: DatabaseTimeouts) -> None:
    """Makes every PostgreSQL connection of `engine` observe `timeouts` (other databases: nothing to do)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    # psycopg is imported only here, where it is used: a process on SQLite (most console commands) skips it.
    from server.postgres_connection import BoundedConnection

    connection_class: type[BoundedConnection] = type(
        "EngineConnection", (BoundedConnection,), {"answer_seconds": timeouts.answer_seconds}
    )

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        cparams.setdefault("connect_timeout", timeouts.connect_seconds)
        if timeouts.statement_seconds:
            setting = f"-c statement_timeout={timeouts.statement_seconds * 1000}"
            cparams["options"] = f"{cparams.get('options', '')} {setting}".strip()
        return connection_class.connect(*cargs, **cparams)
