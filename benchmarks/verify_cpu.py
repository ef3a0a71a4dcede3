"""CPU time per one-step `POST /api/v1/verify {username, otp}`, in process, through the Flask test client.

    .venv/bin/python benchmarks/verify_cpu.py [--users 20] [--requests 2000] [--profile]

No HTTP server and no second process, so the figure is the application's own cost (Flask, SQLAlchemy on a
SQLite file, OTP, JWT, audit). It is process CPU time, not wall time, measured per batch of 100 requests:
the best batch is the figure to compare, since others' work on the machine only adds to it. `--profile`
prints Python function calls per request (a count that does not depend on the machine) and the top of a
cProfile listing (cumulative) for the measured requests.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the test helpers live in the repository, not the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from server.app import create_app  # noqa: E402
from server.clock import FrozenClock  # noqa: E402
from server.config import RateLimits, Settings  # noqa: E402
from server.migrations import upgrade_schema  # noqa: E402
from tests.accounts import Accounts, PhoneToken, login_form_credentials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        url = f"sqlite:///{tmp / 'tokenward.db'}"
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


if __name__ == "__main__":
    main()
