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
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import Engine, event

# Added to the statement timeout for the client's deadline: the server's own cancel should win when it can.
CLIENT_DEADLINE_MARGIN_SECONDS = 1.0
_WAIT_INTERVAL_SECONDS = 0.1  # psycopg's own: how often a wait wakes to check for interrupts
_ceiling: ContextVar[float | None] = ContextVar("database_wait_ceiling", default=None)


@dataclass(frozen=True)
class DatabaseTimeouts:
    connect_seconds: int  # TCP connect, TLS and authentication together
    statement_seconds: int  # 0: no limit (the client deadline is then the ceiling alone, if any)

    @property
    def answer_seconds(self) -> float | None:
        """The client-side deadline for any one answer."""
        return self.statement_seconds + CLIENT_DEADLINE_MARGIN_SECONDS if self.statement_seconds else None


@contextmanager
def shorter_database_waits(seconds: float) -> Iterator[None]:
    """Within the block, no answer is awaited longer than `seconds` (readiness checks)."""
    token = _ceiling.set(seconds)
    try:
        yield
    finally:
        _ceiling.reset(token)


def _deadline(*limits: float | None) -> float | None:
    present = [limit for limit in (*limits, _ceiling.get()) if limit is not None]
    return min(present) if present else None


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends by a deadline."""

    answer_seconds: float | None = None  # set on the per-engine subclass

    def wait(self, gen: Any, interval: float = _WAIT_INTERVAL_SECONDS, timeout: float | None = None) -> Any:
        limit = _deadline(timeout, self.answer_seconds)
        try:
            return super().wait(gen, interval, limit)
        except _WaitTimeout:
            self.close()  # mid-statement: unusable; closed, the pool treats the error as a disconnect
            raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None


def bound_database_waits(engine: Engine, timeouts: DatabaseTimeouts) -> None:
    """Makes every PostgreSQL connection of `engine` observe `timeouts` (other databases: nothing to do)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
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
