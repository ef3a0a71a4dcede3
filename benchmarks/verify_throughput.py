"""Throughput of the one-step `POST /api/v1/verify {username, otp}` of `tokenward serve`, against bare Flask.

    .venv/bin/python benchmarks/verify_throughput.py [--users 50] [--seconds 10] [--connections 4]

Starts `tokenward serve --workers 2` on SQLite in a temporary directory (rate limits off), creates the
users over the admin API and enrolls an HOTP token for each over the self-service API, then drives the
one-step verify with valid codes from a separate process: several connections, each owning a share of
the users, so that a user's requests are serialized and every code is the next one of that user's counter.
Then the same driver runs for the same time against `benchmarks/bare_flask_app.py` (parse JSON, answer
JSON) under the same gunicorn command line (workers, sync worker class, timeout, access log, hooks).

Prints requests/s, median and 99th percentile latency and the accepted count of each, the server's CPU
time per request (gunicorn master and workers, from /proc) and the driver's CPU use, and the ratios of the
rates and of the CPU costs (the latter is steadier on a busy machine). Bounded by --seconds and
--max-requests; loopback only; asserts nothing. `--database-url` runs Tokenward on a fresh PostgreSQL
schema instead of SQLite.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyotp
import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the test helpers live in the repository, not the package
    sys.path.insert(0, str(ROOT))

from provisioning.serve import gunicorn_argv  # noqa: E402
from tests.e2e.serve_process import (  # noqa: E402
    PASSWORD,
    ServeProcess,
    add_client,
    add_user,
    bearer,
    enroll_token,
    server_env,
)

ADMIN = "bench-admin"
REQUEST_TIMEOUT_SECONDS = 10


@dataclass
class Holder:
    """A user and the HOTP counter of the next code their token shows."""

    username: str
    secret: str
    counter: int


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    outcomes: Counter[int] = field(default_factory=Counter)  # HTTP status → count
    seconds: float = 0.0
    driver_cpu_seconds: float = 0.0  # CPU time of the driver process (all its threads)
    server_cpu_seconds: float = float("nan")  # CPU time of the gunicorn master and workers (Linux only)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _drive_connection(
    base_url: str,
    holders: list[Holder],
    seconds: float,
    budget: int,
    start: threading.Barrier,
    authorization: str,
) -> Run:
    """One keep-alive capable connection cycling through its own users, so each user's codes stay in
    order. gunicorn's sync workers close every connection after the response; http.client reconnects."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_TIMEOUT_SECONDS
    )
    headers = {"Content-Type": "application/json", "Authorization": authorization}
    otps = [pyotp.HOTP(holder.secret) for holder in holders]
    run = Run()
    start.wait()
    deadline = time.perf_counter() + seconds
    index = 0
    try:
        while len(run.latencies) < budget and time.perf_counter() < deadline:
            holder, otp = holders[index % len(holders)], otps[index % len(holders)]
            index += 1
            body = json.dumps({"username": holder.username, "otp": otp.at(holder.counter)})
            started = time.perf_counter()
            connection.request("POST", "/api/v1/verify", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            run.latencies.append(time.perf_counter() - started)
            run.outcomes[response.status] += 1
            if response.status == 200:
                holder.counter += 1
    finally:
        connection.close()
    return run


def drive(
    base_url: str,
    holders: list[Holder],
    connections: int,
    seconds: float,
    max_requests: int,
    authorization: str,
) -> Run:
    """Runs in a separate process, so that the driver's own work is not done by the server's
    interpreter: `connections` threads for `seconds`, at most `max_requests` requests in all. Each request
    carries `authorization`: a registered client's Basic credentials, as a login form sends them."""
    shares = [holders[index::connections] for index in range(connections)]
    start = threading.Barrier(connections + 1)
    with ThreadPoolExecutor(max_workers=connections) as pool:
        futures = [
            pool.submit(
                _drive_connection, base_url, share, seconds, max_requests // connections, start, authorization
            )
            for share in shares
        ]
        start.wait()
        began, cpu_began = time.perf_counter(), time.process_time()
        runs = [future.result() for future in futures]
    total = Run(seconds=time.perf_counter() - began, driver_cpu_seconds=time.process_time() - cpu_began)
    for run in runs:
        total.latencies += run.latencies
        total.outcomes += run.outcomes
    return total


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants, from /proc (NaN elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    try:
        while pending:
            current = pending.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return float("nan")
    return total


def drive_elsewhere(
    server: ServeProcess,
    holders: list[Holder],
    connections: int,
    seconds: float,
    max_requests: int,
    authorization: str,
) -> Run:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(time.sleep, 0).result()  # the driver process is up before the server's CPU is counted
        cpu_before = process_tree_cpu_seconds(server.process.pid)
        run = pool.submit(
            drive, server.base_url, holders, connections, seconds, max_requests, authorization
        ).result(timeout=seconds + 60)
        run.server_cpu_seconds = process_tree_cpu_seconds(server.process.pid) - cpu_before
        return run


def admin_session(http: requests.Session, base_url: str) -> dict[str, str]:
    """A full admin session: the console's admin enrolls an HOTP token and signs in with it."""
    token = enroll_token(http, base_url, ADMIN, kind="hotp")
    challenge = http.post(f"{base_url}/api/v1/login", json={"username": ADMIN, "password": PASSWORD}).json()
    answer = {"transaction_id": challenge["transaction_id"], "otp": token.next_hotp()}
    session = http.post(f"{base_url}/api/v1/verify", json=answer)
    session.raise_for_status()
    return bearer(session.json())


def create_holders(base_url: str, admin: dict[str, str], count: int) -> list[Holder]:
    def one(index: int) -> Holder:
        username = f"bench-{index:04d}"
        with requests.Session() as http:
            created = http.post(
                f"{base_url}/api/v1/admin/users",
                json={"username": username, "password": PASSWORD},
                headers=admin,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            created.raise_for_status()
            token = enroll_token(http, base_url, username, kind="hotp")
        return Holder(username, token.secret, token.next_counter)

    with ThreadPoolExecutor(max_workers=4) as pool:  # Argon2 hashing on the server dominates setup
        return list(pool.map(one, range(count)))


@contextmanager
def database(url: str | None, directory: Path) -> Iterator[str]:
    """A new SQLite file (default), or a new schema on the given PostgreSQL, dropped afterwards; the server
    migrates it when it starts."""
    if not url:
        yield f"sqlite:///{directory / 'tokenward.db'}"
        return
    schema = f"tw_bench_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def report(name: str, run: Run) -> None:
    refused = [f"{count} x HTTP {status}" for status, count in sorted(run.outcomes.items()) if status != 200]
    print(
        f"{name:<10} {len(run.latencies):>6} requests in {run.seconds:4.1f} s: {run.rate:7.1f} req/s, "
        f"p50 {run.percentile(0.50) * 1000:6.1f} ms, p99 {run.percentile(0.99) * 1000:6.1f} ms, "
        f"{run.outcomes.get(200, 0)} accepted{' (' + ', '.join(refused) + ')' if refused else ''}"
    )
    print(
        f"{'':<10} server CPU {run.server_cpu_seconds / max(1, len(run.latencies)) * 1000:.2f} ms/request, "
        f"driver CPU {run.driver_cpu_seconds / run.seconds:.0%} of a core"
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="users, each with an HOTP token")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each server is driven")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections of the driver")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of both servers")
    parser.add_argument("--max-requests", type=int, default=200_000, help="upper bound per server")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL to run on (a schema of its own) instead of SQLite",
    )
    args = parser.parse_args()
    if not 1 <= args.connections <= args.users <= 10_000 or not 0 < args.seconds <= 300:
        parser.error("need 1 <= connections <= users <= 10000 and 0 < seconds <= 300")

    print(
        f"{machine()}; gunicorn --workers {args.workers} (sync); {args.connections} connections; "
        f"{args.users} users; {args.seconds:g} s per server; "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="tokenward-bench-") as directory,
        database(args.database_url, Path(directory)) as database_url,
    ):
        tmp = Path(directory)
        env = server_env(
            instance_dir=tmp / "instance",
            database_url=database_url,
            encryption_key=secrets.token_hex(32),
            rate_limits="off",
        )
        add_user(env, ADMIN, admin=True)
        client_id, client_secret = add_client(env, "bench-login-form")
        authorization = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        with ServeProcess.start(env, log_path=tmp / "tokenward.log", workers=args.workers) as server:
            with requests.Session() as http:
                admin = admin_session(http, server.base_url)
            holders = create_holders(server.base_url, admin, args.users)
            tokenward = drive_elsewhere(
                server, holders, args.connections, args.seconds, args.max_requests, authorization
            )
        report("tokenward", tokenward)

        bare_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "bare-metrics")}
        (tmp / "bare-metrics").mkdir()
        argv = gunicorn_argv(
            "benchmarks.bare_flask_app:app",
            bind="127.0.0.1:0",
            workers=args.workers,
            control_socket=tmp / "bare.ctl",
        )
        with ServeProcess.launch(argv, bare_env, log_path=tmp / "bare.log", cwd=ROOT) as bare_server:
            bare = drive_elsewhere(
                bare_server, holders, args.connections, args.seconds, args.max_requests, authorization
            )
        report("bare flask", bare)
    if bare.rate:
        print(f"ratio tokenward/bare: {tokenward.rate / bare.rate:.2f} (requests/s)")
        per_request = [run.server_cpu_seconds / max(1, len(run.latencies)) for run in (tokenward, bare)]
        print(f"server CPU per request, bare/tokenward: {per_request[1] / per_request[0]:.2f}")


if __name__ == "__main__":
    main()
