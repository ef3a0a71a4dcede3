"""The psycopg connection class of server.db_timeouts: every wait for the server ends by a deadline."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.errors import _WaitTimeout

from server.db_timeouts import deadline

_WAIT_INTERVAL_SECONDS = 0.1  # psycopg's own: how often a wait wakes to check for interrupts


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends by a deadline."""

    answer_seconds: float | None = None  # set on the per-engine subclass

    def wait(self, gen: Any, interval: float = _WAIT_INTERVAL_SECONDS, timeout: float | None = None) -> Any:
        limit = deadline(timeout, self.answer_seconds)
        try:
            return super().wait(gen, interval, limit)
        except _WaitTimeout:
            self.close()  # mid-statement: unusable; closed, the pool treats the error as a disconnect
            raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None
