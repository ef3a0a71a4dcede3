"""The Flask-SQLAlchemy handle and engine tuning shared by every node."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, CursorResult, Engine, MetaData, Result, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session

from server.config import DatabaseTimeouts
from server.db_timeouts import bound_database_waits
from server.sqlite_writers import WriterQueue

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


# What runs a Core statement: the ORM session (which flushes its pending changes first), or the connection of
# its transaction (the one-step verify, whose rows are plain ones: server.services.verify_rows).
Executor = Session | Connection


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE/DELETE touched: the verdict of every single-use consumption."""
    return cast(CursorResult[Any], result).rowcount


def current_session() -> Session:
    """The database session of the current request or console command (the services' first argument)."""
    return db.session()


# Execution option of a transaction begun by `begin_reads`: on SQLite a plain (deferred) BEGIN, outside the
# writer queue.
READS_ONLY = "tokenward_reads_only"


def begin_reads(session: Session) -> None:
    """Begins the request's transaction as one that only reads, if none is open: on SQLite it then takes
    neither the writer queue nor the write lock, and `end_reads` ends it before the first write, so the node's
    other writers do not wait while these rows are read. Elsewhere nothing changes: reads take no lock on
    PostgreSQL, and a second transaction would only cost round trips."""
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={READS_ONLY: True})


def end_reads(session: Session) -> None:
    """Turns the transaction `begin_reads` began into one that writes (nothing otherwise); call it before the
    request's first write. On SQLite the reads' snapshot is committed (nothing was written) and the same
    connection begins again as every writer does: the writer queue, then `BEGIN IMMEDIATE`. The rows read stay
    loaded as they were read: the writes that follow decide by their own conditions (a conditional UPDATE's
    row count for single use, the guess count against the threshold), as on PostgreSQL, where a row read may
    change before the write too."""
    if not session.in_transaction():
        return
    connection = session.connection()
    if connection.get_execution_options().get(READS_ONLY):
        send_to_sqlite(connection, "COMMIT")
        connection.execution_options(**{READS_ONLY: False})
        connection.dispatch.begin(connection)  # the engine's begin hooks, as at any BEGIN: queue, lock


def send_to_sqlite(connection: Connection, statement: str) -> None:
    """A transaction's BEGIN or COMMIT sent on SQLite's own connection: through SQLAlchemy's execution (a
    context, events, a result) it cost about 40 µs of Python, four times on every sign-in. A failure is
    SQLAlchemy's error, as one of its statements' would be (a lock not had in time:
    `database_unavailable`)."""
    try:
        connection.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as err:
        raise DBAPIError.instance(statement, None, err, sqlite3.Error) from err


def engine_options(url: str, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several gunicorn workers share the file: wait for the write lock instead of failing at once.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # A thread waits for a pooled connection no longer than it would wait to open one.
    return {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": timeouts.connect_seconds,
    }


def prepare_engine(engine: Engine, timeouts: DatabaseTimeouts) -> None:
    """What every engine of the application needs before its first connection."""
    queue_sqlite_writers(engine)  # first: its BEGIN hook must run before tune_sqlite's BEGIN IMMEDIATE
    tune_sqlite(engine)
    bound_database_waits(engine, timeouts)


def tune_sqlite(engine: Engine) -> None:
    """WAL + `BEGIN IMMEDIATE`: every transaction takes the write lock up front, so a read followed by a
    conditional UPDATE can never fail with SQLITE_BUSY mid-way (busy_timeout makes others wait instead).
    A transaction that only reads (`begin_reads`) begins deferred: in WAL it reads a snapshot, locking
    nothing."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reads_only = connection.get_execution_options().get(READS_ONLY)
        send_to_sqlite(connection, "BEGIN" if reads_only else "BEGIN IMMEDIATE")


def queue_sqlite_writers(engine: Engine) -> None:
    """The serving processes' writers queue for SQLite's write lock on a `WriterQueue` first: SQLite's
    busy handler lets a waiter sleep in growing steps (up to 100 ms) while others take the lock again and
    again, which gave sign-ins a tail of hundreds of milliseconds under load."""
    if engine.dialect.name != "sqlite":
        return
    queue = WriterQueue(engine.url.database)

    @event.listens_for(engine, "begin")  # registered before tune_sqlite's BEGIN IMMEDIATE (prepare_engine)
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get(READS_ONLY):
            queue.enter(connection.info)

    # SQLAlchemy calls these before it has the driver commit or roll back: the statement is sent here, so
    # the next writer is let in once SQLite's lock is free (else its BEGIN IMMEDIATE found it still held and
    # slept in SQLite's busy handler). The driver's own commit or rollback then finds nothing to end.
    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        _end_then_leave(connection, "COMMIT")

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        _end_then_leave(connection, "ROLLBACK")

    def _end_then_leave(connection: Any, statement: str) -> None:
        try:
            if connection.connection.dbapi_connection.in_transaction:
                send_to_sqlite(connection, statement)
        finally:
            queue.leave(connection.info)

    # A transaction that ended without either (its BEGIN failed, its connection was invalidated or
    # collected) leaves when the connection goes back to the pool.
    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _on_return(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            queue.leave(record.info)
