"""Throughput of the one-step `POST /api/v1/verify {username, otp}` of `tokenward serve`, against bare Flask.

    .venv/bin/python benchmarks/verify_throughput.py [--tokens 1000] [--users 200] [--rounds 3] \
        [--seconds 10] [--connections 4] [--workers 2] [--database-url URL]

Seeds `--tokens` users, each with an active HOTP token, in bulk into a fresh database (SQLite in a temporary
directory, or a schema of its own on the PostgreSQL of `--database-url`), registers a client for the login
form's HTTP Basic credentials, and starts `tokenward serve` (rate limits off) and, beside it,
`benchmarks/bare_flask_app.py` (parse JSON, answer JSON) under the same gunicorn command line. Then, for
each round, `wrk` drives each server in turn for `--seconds` with `benchmarks/verify_wrk.lua`: every wrk
thread owns one connection and a file of bodies for its own users, each body the next unused HOTP code of
its user, so every request to Tokenward is one that should be accepted (each round uses users of its own).
A warm-up round comes first and is not counted.

Prints, per round and server: requests/s, median and 99th percentile latency, the share of HTTP 200s, the
server's CPU time per request (gunicorn master and workers, from /proc) and wrk's CPU use; then the medians
of the rounds and the ratios. Asserts nothing; loopback only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyotp
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the test helpers live in the repository, not the package
    sys.path.insert(0, str(ROOT))

from benchmarks.bulk_seed import Holder, seed  # noqa: E402
from provisioning.serve import gunicorn_argv  # noqa: E402
from server.migrations import upgrade_schema  # noqa: E402
from tests.e2e.serve_process import PASSWORD, ServeProcess, add_client, server_env  # noqa: E402

WRK_SCRIPT = Path(__file__).with_name("verify_wrk.lua")
MAX_RATE = 5000  # requests/s a server could possibly reach here: bodies are written for this many


@dataclass
class Run:
    requests: int
    seconds: float
    accepted: int
    p50_ms: float
    p99_ms: float
    server_cpu_seconds: float
    driver_cpu_seconds: float
    socket_errors: int
    ran_out: bool

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds / max(1, self.requests) * 1000


def write_bodies(prefix: Path, holders: list[Holder], *, threads: int, per_thread: int) -> None:
    """`prefix.<thread>`: one body a line, cycling through the thread's users, each code its user's next."""
    for thread in range(threads):
        share = holders[thread::threads]
        otps = [pyotp.HOTP(base64.b32encode(holder.key).decode()) for holder in share]
        with Path(f"{prefix}.{thread}").open("w") as bodies:
            for line in range(per_thread):
                holder, otp = share[line % len(share)], otps[line % len(share)]
                bodies.write(json.dumps({"username": holder.username, "otp": otp.at(holder.counter)}) + "\n")
                holder.counter += 1


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def run_wrk(
    server: ServeProcess, prefix: Path, authorization: Path, *, connections: int, seconds: float
) -> Run:
    argv = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    argv += ["-s", str(WRK_SCRIPT), server.url("/api/v1/verify"), "--", str(prefix), str(authorization)]
    server_before, driver_before = process_tree_cpu_seconds(server.process.pid), children_cpu_seconds()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    server_cpu = process_tree_cpu_seconds(server.process.pid) - server_before
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return Run(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        accepted=figures["accepted"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        server_cpu_seconds=server_cpu,
        driver_cpu_seconds=children_cpu_seconds() - driver_before,
        socket_errors=figures["socket_errors"],
        ran_out=bool(figures["ran_out"]),
    )


@contextmanager
def database(url: str | None, directory: Path) -> Iterator[str]:
    """A new SQLite file (default), or a new schema on the given PostgreSQL, dropped afterwards."""
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
    print(
        f"  {name:<10} {run.requests:>6} requests in {run.seconds:4.1f} s: {run.rate:7.1f} req/s, "
        f"p50 {run.p50_ms:5.1f} ms, p99 {run.p99_ms:5.1f} ms, "
        f"{run.accepted / max(1, run.requests):.1%} HTTP 200, "
        f"server CPU {run.cpu_ms_per_request:.2f} ms/request, "
        f"wrk CPU {run.driver_cpu_seconds / run.seconds:.0%}"
        f"{f', {run.socket_errors} socket errors' if run.socket_errors else ''}"
        f"{' (ran out of fresh codes)' if run.ran_out else ''}"
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
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}, Python {platform.python_version()}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1000, help="users seeded, each with an HOTP token")
    parser.add_argument("--users", type=int, default=200, help="users driven per round (spread over all)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (each server once a round)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each server is driven a round")
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=4, help="wrk threads, one connection each")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of both servers")
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL URL (a schema of its own) instead of SQLite"
    )
    args = parser.parse_args()
    driven = args.users * (args.rounds + 1)
    if not args.connections <= args.users or not driven <= args.tokens <= 10_000_000:
        parser.error("need connections <= users and users * (rounds + 1) <= tokens <= 10,000,000")
    if not 0 < args.seconds <= 300:
        parser.error("need 0 < seconds <= 300")
    return args


def main() -> None:
    args = parse_args()
    workers = "(the worker class and threads of `tokenward serve`)"
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{machine()}\ngunicorn --workers {args.workers} {workers}; wrk, {args.connections} connections; "
        f"{args.tokens:,} tokens, {args.users} users a round; "
        f"{args.rounds} rounds of {args.seconds:g} s per server; {store}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="tokenward-bench-") as directory,
        database(args.database_url, Path(directory)) as database_url,
        ExitStack() as servers,
    ):
        tmp = Path(directory)
        encryption_key = secrets.token_bytes(32)
        env = server_env(
            instance_dir=tmp / "instance",
            database_url=database_url,
            encryption_key=encryption_key.hex(),
            rate_limits="off",
        )
        engine = create_engine(database_url)
        upgrade_schema(engine)  # the console serves existing instances only
        client_id, client_secret = add_client(env, "bench-login-form")
        authorization = tmp / "authorization"
        authorization.write_text(
            "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        )
        began = time.perf_counter()
        holders = seed(
            engine,
            total=args.tokens,
            driven=args.users * (args.rounds + 1),
            encryption_key=encryption_key,
            password=PASSWORD,
        )
        engine.dispose()
        print(f"seeded {args.tokens:,} users and tokens in {time.perf_counter() - began:.1f} s")

        tokenward = servers.enter_context(
            ServeProcess.start(env, log_path=tmp / "tokenward.log", workers=args.workers)
        )
        (tmp / "bare-metrics").mkdir()
        bare_argv = gunicorn_argv(
            "benchmarks.bare_flask_app:app",
            bind="127.0.0.1:0",
            workers=args.workers,
            control_socket=tmp / "bare.ctl",
        )
        bare_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "bare-metrics")}
        bare = servers.enter_context(
            ServeProcess.launch(bare_argv, bare_env, log_path=tmp / "bare.log", cwd=ROOT)
        )

        results: dict[str, list[Run]] = {"tokenward": [], "bare flask": []}
        for round_number in range(args.rounds + 1):
            seconds = args.seconds if round_number else args.warmup_seconds
            per_thread = int(MAX_RATE * seconds / args.connections) + 1
            prefix = tmp / f"bodies-{round_number}"
            share = holders[round_number :: args.rounds + 1]  # each round spread over all the tokens
            write_bodies(prefix, share, threads=args.connections, per_thread=per_thread)
            print(f"round {round_number}" + (" (warm-up, not counted)" if not round_number else ""))
            for name, server in (("tokenward", tokenward), ("bare flask", bare)):
                run = run_wrk(server, prefix, authorization, connections=args.connections, seconds=seconds)
                report(name, run)
                if round_number:
                    results[name].append(run)
    summarise(results)


def summarise(results: dict[str, list[Run]]) -> None:
    medians = {
        name: (
            statistics.median(run.rate for run in runs),
            statistics.median(run.p99_ms for run in runs),
            statistics.median(run.cpu_ms_per_request for run in runs),
        )
        for name, runs in results.items()
    }
    print("medians of the rounds:")
    for name, (rate, p99, cpu) in medians.items():
        print(f"  {name:<10} {rate:7.1f} req/s, p99 {p99:5.1f} ms, server CPU {cpu:.2f} ms/request")
    (rate, _, cpu), (bare_rate, _, bare_cpu) = medians["tokenward"], medians["bare flask"]
    ratios = [
        run.rate / other.rate for run, other in zip(results["tokenward"], results["bare flask"], strict=True)
    ]
    rounds = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    print(f"ratio tokenward/bare by requests/s: {rate / bare_rate:.2f} (rounds: {rounds})")
    print(f"ratio bare/tokenward by server CPU per request: {bare_cpu / cpu:.2f}")


if __name__ == "__main__":
    main()
