"""The queue in front of SQLite's write lock (server.sqlite_writers): it serialises the serving threads'
transactions and never keeps a place for a transaction that ended some other way than commit or rollback."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from server import sqlite_writers
from server.config import DatabaseTimeouts
from server.db import engine_options, prepare_engine

THREADS, ROUNDS = 8, 25


def _engine(path: Path) -> Engine:
    url = f"sqlite:///{path / 'queue.db'}"
    engine = create_engine(url, **engine_options(url, DatabaseTimeouts(5, 5)))
    prepare_engine(engine, DatabaseTimeouts(5, 5))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def test_threads_take_turns_and_every_increment_counts(tmp_path: Path) -> None:
    engine = _engine(tmp_path)

    def increment(_: int) -> None:
        for _round in range(ROUNDS):
            with engine.begin() as connection:
                n = connection.execute(text("SELECT n FROM counter")).scalar_one()
                connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(increment, range(THREADS)))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == THREADS * ROUNDS
    assert (tmp_path / "queue.db.writers").exists()  # where the processes of the node queue
    engine.dispose()


def test_a_transaction_whose_connection_died_leaves_the_queue(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    connection = engine.connect()
    connection.begin()
    connection.execute(text("UPDATE counter SET n = 1"))
    connection.invalidate()  # no commit, no rollback: the pool drops the connection
    with ThreadPoolExecutor(1) as pool:  # another thread gets the write lock, long before the 30 s wait
        pool.submit(_write_once, engine).result(timeout=10)
    engine.dispose()  # the invalidated connection's DBAPI connection is closed already


def _write_once(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE counter SET n = 2"))


def test_a_writer_waits_in_the_queue_before_it_asks_sqlite_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    monkeypatch.setattr(sqlite_writers, "THREAD_WAIT_SECONDS", 0.2)
    sent: list[str] = []
    holder = engine.connect()
    holder.begin()
    holder.execute(text("UPDATE counter SET n = 1"))  # holds the queue and SQLite's lock

    def write() -> None:
        with engine.connect() as connection:
            # Should it reach SQLite's lock, it fails at once rather than in 30 s.
            dbapi_connection: Any = connection.connection.dbapi_connection
            dbapi_connection.execute("PRAGMA busy_timeout=100")
            dbapi_connection.set_trace_callback(sent.append)  # what SQLite runs, BEGIN included
            with pytest.raises(OperationalError), connection.begin():
                connection.execute(text("UPDATE counter SET n = 2"))

    with ThreadPoolExecutor(1, thread_name_prefix="second-writer") as pool:
        pool.submit(write).result(timeout=30)
    holder.rollback()
    holder.close()
    # Refused by the queue's wait, without having sent anything to SQLite (no BEGIN IMMEDIATE polling there).
    assert sent == []
    engine.dispose()


def test_the_next_writer_is_let_in_once_sqlite_s_lock_is_free(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    free_at_leave: list[bool] = []

    def after_the_queue_left(_connection: Any) -> None:  # registered after the queue's own commit hook
        other = sqlite3.connect(tmp_path / "queue.db", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free_at_leave.append(True)
        except sqlite3.OperationalError:
            free_at_leave.append(False)
        finally:
            other.close()

    event.listen(engine, "commit", after_the_queue_left)
    with engine.begin() as connection:
        connection.execute(text("UPDATE counter SET n = 3"))
    assert free_at_leave == [True]
    engine.dispose()
