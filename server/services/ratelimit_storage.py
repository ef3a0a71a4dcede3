"""Rate-limit counters on the application's own database: a `limits` storage (`database://`).

Every gunicorn worker of a node (and every node, on PostgreSQL) counts in one table, so a configured limit
holds whatever the number of workers, without Redis. Fixed windows: a counter is one row, incremented by one
atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING` (SQLite >= 3.35 and PostgreSQL) that starts a new
window when the old one has expired; the returned count decides. The table (`RateLimitCounter`) comes with
the schema's migrations; the storage deletes expired rows as it goes.

The counters use the real time (`time.time()`), as the `limits` library's own storages do.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, cast

from limits.storage import Storage
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Float, Integer, String, Table, bindparam, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from server.config import DatabaseTimeouts, Settings
from server.db import engine_options, rows_changed
from server.db_timeouts import bound_database_waits
from server.models import RateLimitCounter

SCHEME = "database"
COUNTERS = cast(Table, RateLimitCounter.__table__)
# Expired rows are deleted at most this often per process (they are also overwritten when their key returns).
PURGE_INTERVAL_SECONDS = 60.0

_INCREMENT = text(
    "INSERT INTO ratelimit_counters (name, count, expires_at) VALUES (:name, :amount, :now + :expiry) "
    "ON CONFLICT (name) DO UPDATE SET "
    "count = CASE WHEN ratelimit_counters.expires_at <= :now "
    "THEN :amount ELSE ratelimit_counters.count + :amount END, "
    "expires_at = CASE WHEN ratelimit_counters.expires_at <= :now "
    "THEN :now + :expiry ELSE ratelimit_counters.expires_at END "
    "RETURNING count"
).bindparams(
    bindparam("name", type_=String),
    bindparam("amount", type_=Integer),
    bindparam("now", type_=Float),
    bindparam("expiry", type_=Float),
)
_CURRENT = text(
    "SELECT count, expires_at FROM ratelimit_counters WHERE name = :name AND expires_at > :now"
).bindparams(bindparam("name", type_=String), bindparam("now", type_=Float))


class DatabaseStorage(Storage):
    """`database://` in TOKENWARD_RATELIMIT_STORAGE: counters in the database of `database_url`, on an engine
    of its own (a counter commits at once, outside the request's transaction)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        database_url: str = "",
        database_timeouts: DatabaseTimeouts | None = None,
        **options: Any,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if not database_url or database_timeouts is None:
            raise ValueError("the database:// rate-limit storage needs the database URL and timeouts")
        self.engine: Engine = create_engine(database_url, **_small_pool(database_url, database_timeouts))
        _autocommit_sqlite(self.engine)
        bound_database_waits(self.engine, database_timeouts)
        self._next_purge = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.engine.begin() as connection:
            count = connection.execute(
                _INCREMENT, {"name": _name(key), "amount": amount, "now": now, "expiry": float(expiry)}
            ).scalar_one()
            if now >= self._next_purge:
                self._next_purge = now + PURGE_INTERVAL_SECONDS
                connection.execute(COUNTERS.delete().where(COUNTERS.c.expires_at <= now))
        return int(count)

    def _current(self, key: str) -> tuple[int, float] | None:
        with self.engine.connect() as connection:
            row = connection.execute(_CURRENT, {"name": _name(key), "now": time.time()}).first()
        return (int(row[0]), float(row[1])) if row is not None else None

    def get(self, key: str) -> int:
        current = self._current(key)
        return current[0] if current else 0

    def get_expiry(self, key: str) -> float:
        current = self._current(key)
        return current[1] if current else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as connection:
            return rows_changed(connection.execute(COUNTERS.delete()))

    def clear(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(COUNTERS.delete().where(COUNTERS.c.name == _name(key)))


def storage_options(settings: Settings) -> dict[str, Any]:
    """The options of TOKENWARD_RATELIMIT_STORAGE's storage: the database's URL and timeouts; Redis's
    timeouts, without retries (a retry would multiply the wait of every request while Redis is down).
    Memory needs none."""
    scheme = settings.ratelimit_storage.split(":", 1)[0]
    if scheme == SCHEME:
        return {"database_url": settings.sqlalchemy_url, "database_timeouts": settings.database_timeouts}
    if scheme.startswith("redis"):
        seconds = settings.ratelimit_storage_timeout
        return {"socket_timeout": seconds, "socket_connect_timeout": seconds, "retry": Retry(NoBackoff(), 0)}
    return {}


def _name(key: str) -> str:
    """A counter's row name: the SHA-256 of its key. Keys carry a user name from the request body, which
    may hold anything (PostgreSQL text cannot store NUL; lone surrogates do not encode as UTF-8)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _autocommit_sqlite(engine: Engine) -> None:
    """SQLite: every statement is its own transaction (each one here is atomic alone). Not the application's
    `BEGIN IMMEDIATE` (server.db.tune_sqlite): a request's session may hold the write lock while Flask-Limiter
    reads a counter for its headers, and a read must not wait for it (WAL readers never do)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver sends no BEGIN: autocommit
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def _small_pool(database_url: str, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """The application's engine options with a smaller pool: a counter is one short statement."""
    options = engine_options(database_url, timeouts)
    if "pool_size" in options:
        options.update(pool_size=2, max_overflow=8)
    return options
