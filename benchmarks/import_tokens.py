"""Seed-file import of many tokens into a fresh SQLite database, through the service and the console.

    .venv/bin/python benchmarks/import_tokens.py [--tokens 10000]

Writes a PSKC file (plain, pre-shared-key encrypted and PBKDF2 encrypted) and an OATH CSV of the same tokens
into a temporary directory, then prints the seconds and tokens/s of each import: through
`seed_import.import_seed_file` (split into reading and importing), and once through `tokenward token import
--progress` in a subprocess (process start, rich progress bar and all). Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pskc
from sqlalchemy import create_engine

from server.app import create_app
from server.config import RateLimits, Settings
from server.db import db
from server.migrations import upgrade_schema
from server.services import seed_import
from server.services.audit import Actor

PSK = secrets.token_bytes(16)
PASSPHRASE = "benchmark passphrase"
HOTP_URI = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
TOTP_URI = "urn:ietf:params:xml:ns:keyprov:pskc:totp"


def seeds(count: int) -> list[tuple[str, bytes, str]]:
    """(serial, key, type): half HOTP, half TOTP."""
    return [
        (f"BENCH{index:07d}", secrets.token_bytes(20), "hotp" if index % 2 else "totp")
        for index in range(count)
    ]


def write_pskc(path: Path, tokens: list[tuple[str, bytes, str]], protection: str) -> Path:
    container = pskc.PSKC()
    for serial, key, kind in tokens:
        container.add_key(
            serial=serial,
            secret=key,
            algorithm=HOTP_URI if kind == "hotp" else TOTP_URI,
            response_length=6,
            **({"counter": 0} if kind == "hotp" else {"time_interval": 30}),
        )
    if protection == "psk":
        container.encryption.setup_preshared_key(key=PSK)
    elif protection == "pbkdf2":
        container.encryption.setup_pbkdf2(PASSPHRASE)  # python-pskc's default iteration count
    output = io.BytesIO()
    container.write(output)
    path.write_bytes(output.getvalue())
    return path


def write_csv(path: Path, tokens: list[tuple[str, bytes, str]]) -> Path:
    lines = ["serial, key, type, digits, counter/period"]
    lines += [
        f"{serial}, {key.hex()}, {kind}, 6, {0 if kind == 'hotp' else 30}" for serial, key, kind in tokens
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def fresh_database(directory: Path, name: str) -> str:
    url = f"sqlite:///{directory / f'{name}.db'}"
    engine = create_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    return url


def through_service(directory: Path, name: str, path: Path, **keys: object) -> tuple[float, float, int]:
    """(reading seconds, importing seconds, tokens) for one import into a fresh database."""
    settings = Settings(
        instance_dir=directory / "instance",
        database_url=fresh_database(directory, name),
        rate_limits=RateLimits.parse("off"),
        encryption_key=secrets.token_hex(32),
    )
    app = create_app(settings)
    marks: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        marks[phase] = time.perf_counter()

    with app.app_context():
        started = time.perf_counter()
        result = seed_import.import_seed_file(
            db.session,
            app.extensions["tokenward"],
            data=path.read_bytes(),
            source=path.name,
            actor=Actor.console(),
            progress=progress,
            **keys,  # type: ignore[arg-type]
        )
        finished = time.perf_counter()
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    read_seconds = marks["reading"] - started
    return read_seconds, finished - marks["reading"], result.count


def through_console(directory: Path, path: Path, *extra: str) -> float:
    env = {
        **os.environ,
        "TOKENWARD_INSTANCE_DIR": str(directory / "console-instance"),
        "TOKENWARD_DATABASE_URL": fresh_database(directory, "console"),
        "TOKENWARD_RATE_LIMITS": "off",
        "TOKENWARD_ENCRYPTION_KEY": secrets.token_hex(32),  # the console refuses to make an instance's key
    }
    (directory / "console-instance").mkdir(exist_ok=True)
    tokenward = Path(sys.executable).parent / "tokenward"
    started = time.perf_counter()
    subprocess.run(
        [str(tokenward), "token", "import", str(path), "--progress", *extra],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def report(label: str, count: int, read: float, insert: float) -> None:
    total = read + insert
    print(
        f"  {label:<26} {total:6.2f} s  {count / total:8.0f} tokens/s"
        f"   (reading {read:5.2f} s, importing {insert:5.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    args = parser.parse_args()
    tokens = seeds(args.tokens)
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        files: dict[str, tuple[Path, dict[str, object]]] = {
            "PSKC plain": (write_pskc(directory / "plain.xml", tokens, "plain"), {}),
            "PSKC pre-shared key": (write_pskc(directory / "psk.xml", tokens, "psk"), {"psk": PSK}),
            "PSKC PBKDF2": (
                write_pskc(directory / "pbkdf2.xml", tokens, "pbkdf2"),
                {"passphrase": PASSPHRASE},
            ),
            "OATH CSV": (write_csv(directory / "seeds.csv", tokens), {}),
        }
        print(f"Seed import of {args.tokens} tokens into a fresh SQLite database (one transaction each)")
        print("through the service:")
        for index, (label, (path, keys)) in enumerate(files.items()):
            read, insert, count = through_service(directory, f"service{index}", path, **keys)
            report(label, count, read, insert)
        print("through `tokenward token import --progress` (a new process each, start-up included):")
        runs: list[tuple[str, Callable[[], float]]] = [
            (
                "PSKC pre-shared key",
                lambda: through_console(directory, files["PSKC pre-shared key"][0], "--psk", PSK.hex()),
            ),
            ("OATH CSV", lambda: through_console(directory, files["OATH CSV"][0])),
        ]
        for label, run in runs:
            for old in directory.glob("console.db*"):
                old.unlink()
            seconds = run()
            print(f"  {label:<26} {seconds:6.2f} s  {args.tokens / seconds:8.0f} tokens/s")


if __name__ == "__main__":
    main()
