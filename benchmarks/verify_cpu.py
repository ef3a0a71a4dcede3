"""CPU time per one-step `POST /api/v1/verify {username, otp}`, in process, through the Flask test client.

    .venv/bin/python benchmarks/verify_cpu.py [--users 20] [--requests 2000] [--profile] [--statements] \
        [--database-url postgresql+psycopg://…]

No HTTP server and no second process, so the figure is the application's own cost (Flask, SQLAlchemy on a
SQLite file, OTP, JWT, audit); with `--database-url`, on a schema of its own on that PostgreSQL, whose own
processes' CPU is not counted. It is process CPU time, not wall time, measured per batch of 100 requests:
the best batch is the figure to compare, since others' work on the machine only adds to it. `--profile`
prints Python function calls per request (a count that does not depend on the machine) and the top of a
cProfile listing (cumulative) for the measured requests; `--statements`, the SQL statements of one verify
(BEGIN and COMMIT included when sent as statements). On SQLite it also prints how long a verify holds the
write lock (wall time from `BEGIN IMMEDIATE` to the commit, median of 300 more verifies): the node's
sign-ins take turns for that long, so it bounds the node's verifies per second.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the test helpers live in the repository, not the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event  # noqa: E402

from benchmarks.verify_throughput import database  # noqa: E402
from server.app import create_app  # noqa: E402
from server.clock import FrozenClock  # noqa: E402
from server.config import RateLimits, Settings  # noqa: E402
from server.db import READS_ONLY, db  # noqa: E402
from server.migrations import upgrade_schema  # noqa: E402
from tests.accounts import Accounts, PhoneToken, login_form_credentials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--database-url", help="a PostgreSQL to use a fresh schema of (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, database(args.database_url, Path(directory)) as url:
        tmp = Path(directory)
        engine = create_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        settings = Settings(
            instance_dir=tmp / "instance",
            database_url=url,
            rate_limits=RateLimits.parse("off"),
            encryption_key=secrets.token_hex(32),
        )
        clock = FrozenClock(time.time())
        app = create_app(settings, clock=clock)
        accounts = Accounts(app, app.test_client(), clock)
        phones: list[tuple[str, PhoneToken]] = []
        for index in range(args.users):
            name = f"user{index}"
            phones.append((name, accounts.user_with_phone(name, type="hotp")))
        client = app.test_client()
        credentials = login_form_credentials(app)  # a registered client's HTTP Basic, as a login form sends

        def one(index: int) -> None:
            name, phone = phones[index % len(phones)]
            response = client.post(
                "/api/v1/verify", json={"username": name, "otp": phone.code(0)}, headers=credentials
            )
            assert response.status_code == 200, response.json

        for index in range(min(200, args.requests)):  # warm up: imports, caches, statement compilation
            one(index)
        if args.statements:
            print_statements(app, lambda: one(0))
        clock.advance(1)  # a new second, as the real clock would give
        profiler = cProfile.Profile() if args.profile else None
        batches: list[float] = []  # CPU seconds per request, one figure per batch of 100
        if profiler:
            profiler.enable()
        for start in range(0, args.requests, 100):
            cpu_before = time.process_time()
            for index in range(start, min(start + 100, args.requests)):
                one(index)
            batches.append((time.process_time() - cpu_before) / (min(start + 100, args.requests) - start))
            clock.advance(1)
        if profiler:
            profiler.disable()
        batches.sort()
        print(
            f"{args.requests} verifies, ms CPU/request: best batch {batches[0] * 1000:.3f}, "
            f"median batch {batches[len(batches) // 2] * 1000:.3f}"
        )
        if profiler:
            stats = pstats.Stats(profiler)
            print(f"{stats.total_calls / args.requests:.0f} Python function calls per request")  # type: ignore[attr-defined]
            stats.sort_stats("cumulative").print_stats(45)
        if url.startswith("sqlite"):
            held = write_lock_seconds(app, [lambda index=index: one(index) for index in range(300)])
            print(f"write lock held per verify: median {held * 1000:.3f} ms")
        with app.app_context():
            db.engine.dispose()  # before its PostgreSQL schema is dropped


def print_statements(app: Any, verify: Callable[[], None]) -> None:
    """The SQL the app's engine sends during `verify()` (on SQLite, what SQLite runs: server.db sends BEGIN
    and COMMIT on the driver's connection)."""
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def observe(statement: str) -> None:
        statements.append(" ".join(statement.split())[:100])

    def on_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        observe(statement)

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(observe)

    def on_checkin(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(None)

    if engine.dialect.name == "sqlite":
        observers = [("checkout", on_checkout), ("checkin", on_checkin)]
    else:
        observers = [("before_cursor_execute", on_cursor_execute)]
    for name, observer in observers:
        event.listen(engine, name, observer)
    verify()
    for name, observer in observers:
        event.remove(engine, name, observer)
    print(f"{len(statements)} statements in one verify:", *statements, sep="\n  ")


def write_lock_seconds(app: Any, verifies: list[Callable[[], None]]) -> float:
    """The median time from the start of a writing transaction (its `begin` hooks: the writer queue, then
    `BEGIN IMMEDIATE`) to the commit over `verifies` (SQLite)."""
    with app.app_context():
        engine = db.engine
    held: list[float] = []
    began: list[float] = []

    def observe(connection: Any) -> None:
        if not connection.get_execution_options().get(READS_ONLY):
            began.append(time.perf_counter())

    def committed(_conn: Any) -> None:
        if began:
            held.append(time.perf_counter() - began.pop())

    event.listen(engine, "begin", observe)
    event.listen(engine, "commit", committed)
    for verify in verifies:
        verify()
    event.remove(engine, "begin", observe)
    event.remove(engine, "commit", committed)
    return statistics.median(held)


if __name__ == "__main__":
    main()
