"""A backing service that is down or too slow becomes a 503 problem with a stable code and Retry-After.

The libraries' own exceptions are caught here, at the edge, so that no view or service has to: PostgreSQL
or SQLite refusing, dropping or not answering in time (server.db_timeouts bounds every wait) is
`database_unavailable`; Redis, the shared rate-limit store, is `rate_limit_store_unavailable`. Flask-Limiter
lets storage errors through (it is not told to swallow them), so a request that should be counted is
refused rather than let through unlimited: the limits fail closed.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from limits.errors import StorageError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from server.db import current_session
from server.errors import DatabaseUnavailable, RateLimitStoreUnavailable
from server.http.context import request_id
from server.http.problems import tokenward_problem

log = logging.getLogger(__name__)

DATABASE_FAILURES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
RATE_LIMIT_STORE_FAILURES = (RedisConnectionError, RedisTimeoutError, StorageError)


def _discard_session() -> None:
    """The request's session may hold a dead connection: give it back (the pool discards it)."""
    try:
        current_session().rollback()
    except Exception:
        log.debug("rollback after a database failure failed too", exc_info=True)


def _database_failed(err: Exception) -> Response:
    log.warning("database unavailable [request %s]: %s", request_id(), type(err).__name__)
    _discard_session()
    return tokenward_problem(DatabaseUnavailable())


def _store_failed(err: Exception) -> Response:
    log.warning("rate-limit store unavailable [request %s]: %s", request_id(), type(err).__name__)
    return tokenward_problem(RateLimitStoreUnavailable())


def register_outage_handlers(app: Flask) -> None:
    for database_failure in DATABASE_FAILURES:
        app.register_error_handler(database_failure, _database_failed)
    for store_failure in RATE_LIMIT_STORE_FAILURES:
        app.register_error_handler(store_failure, _store_failed)
