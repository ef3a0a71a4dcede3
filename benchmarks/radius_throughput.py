"""Accepted one-round RADIUS requests per second (password + HOTP code in User-Password), with radclient.

    .venv/bin/python benchmarks/radius_throughput.py [--users 40] [--codes 10] [--parallel 8] [--workers 2]
                                                     [--http-seconds 10]

Creates the users and their HOTP tokens (known seeds) and a RADIUS client on SQLite in a temporary
directory (rate limits off), starts `tokenward radius serve`, and sends every user's next codes with
`radclient -p PARALLEL` from one file, round-robin over the users so that a user's codes arrive in order.
Prints requests, accepted count, wall time and accepted/s; then the same for a code-only client (the NAS
checked the password: no Argon2 at Tokenward, as in the HTTP one-step verify without a password); then runs
benchmarks/verify_throughput.py (the HTTP one-step verify, same worker count) and prints its figures beside.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyotp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.config import RateLimits, Settings  # noqa: E402
from server.migrations import upgrade_schema  # noqa: E402
from server.radius.server import build_runtime  # noqa: E402
from server.services.audit import Actor  # noqa: E402
from server.services.radius_clients import add_radius_client  # noqa: E402
from server.services.seed_import import import_seed_file  # noqa: E402
from server.services.users import create_user  # noqa: E402
from tests.e2e.serve_process import TOKENWARD, server_env  # noqa: E402

PASSWORD = "correct horse battery"
SECRET = "benchmark-radius-secret-01"
MODES = {False: "one round (password + HOTP)", True: "code only (the NAS checked the password)"}


def _seed(index: int) -> bytes:
    return index.to_bytes(4, "big") * 5  # 20 bytes, one per user


def setup(instance: Path, database_url: str, key: str, users: int, *, code_only: bool) -> None:
    settings = Settings(
        instance_dir=instance,
        database_url=database_url,
        rate_limits=RateLimits.parse("off"),
        encryption_key=key,
    )
    rt, sessions = build_runtime(settings)
    session = sessions()
    upgrade_schema(session.get_bind())  # type: ignore[arg-type]
    console = Actor.console()
    for index in range(users):
        name = f"user{index}"
        create_user(session, rt, username=name, password=PASSWORD, actor=console)
        data = f"B{index:05d}, {_seed(index).hex()}, hotp\n".encode()
        import_seed_file(session, rt, data=data, source="bench.csv", username=name, actor=console)
    add_radius_client(
        session, rt, name="bench", address="127.0.0.1/32", secret=SECRET, code_only=code_only, actor=console
    )
    session.close()


def requests_file(path: Path, users: int, codes: int, *, code_only: bool) -> int:
    lines = []
    for counter in range(codes):
        for index in range(users):
            code = pyotp.HOTP(base64.b32encode(_seed(index)).decode()).at(counter)
            typed = code if code_only else PASSWORD + code
            lines.append(
                f'User-Name = user{index}, User-Password = "{typed}", Message-Authenticator = 0x00\n'
            )
    path.write_text("\n".join(lines))
    return len(lines)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_radius(options: argparse.Namespace, *, code_only: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="tokenward-radius-bench-") as tmp:
        instance, key = Path(tmp) / "instance", secrets.token_hex(32)
        database_url = f"sqlite:///{Path(tmp) / 'tokenward.db'}"
        setup(instance, database_url, key, options.users, code_only=code_only)
        total = requests_file(Path(tmp) / "requests.txt", options.users, options.codes, code_only=code_only)
        env = server_env(
            instance_dir=instance, database_url=database_url, encryption_key=key, rate_limits="off"
        )
        port = free_udp_port()
        log_path = Path(tmp) / "radius.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [
                    TOKENWARD,
                    "radius",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(options.workers),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 30
            while "RADIUS on udp" not in log_path.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"radius serve did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            started = time.perf_counter()
            result = subprocess.run(
                [
                    *("radclient", "-s", "-q", "-r", "3", "-t", "10", "-p", str(options.parallel)),
                    *("-f", str(Path(tmp) / "requests.txt"), f"127.0.0.1:{port}", "auth", SECRET),
                ],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            seconds = time.perf_counter() - started
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(15)
        found = re.search(r"Accepted\s*:\s*(\d+)", result.stdout + result.stderr)
        accepted = int(found.group(1)) if found else 0
        print(
            f"RADIUS {MODES[code_only]}, "
            f"{options.workers} workers, "
            f"radclient -p {options.parallel}: "
            f"{total} requests, {accepted} accepted in {seconds:.1f} s: {accepted / seconds:.1f} accepted/s"
        )
        if not found:
            print(result.stdout[-2000:], result.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--codes", type=int, default=10, help="requests per user")
    parser.add_argument("--parallel", type=int, default=8, help="radclient -p")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http-seconds", type=float, default=10.0, help="0 skips the HTTP figure")
    options = parser.parse_args()

    for code_only in (False, True):
        run_radius(options, code_only=code_only)
    if options.http_seconds > 0:
        print("HTTP one-step verify (benchmarks/verify_throughput.py):", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "verify_throughput.py"),
                "--seconds",
                str(options.http_seconds),
                "--rounds",
                "1",
                "--workers",
                str(options.workers),
            ],
            check=False,
            env={**os.environ},
        )


if __name__ == "__main__":
    main()
