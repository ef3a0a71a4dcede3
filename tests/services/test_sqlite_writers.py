"""The queue in front of SQLite's write lock (server.sqlite_writers): it serialises the serving threads'
transactions and never keeps a place for a transaction that ended some other way than commit or rollback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

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
