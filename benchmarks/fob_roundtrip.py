"""Round-trip latency of RESPOND through `SerialFob` to a `FobEmulator` on a pseudo-terminal.

    .venv/bin/python benchmarks/fob_roundtrip.py [--rounds 2000] [--suite SUITE ...]

Prints the median and 99th percentile per suite; asserts nothing. A counter suite includes the emulator's
fsync of its state file on every response (a real fob's flash write), the default suite does not.
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator
from devices.ocra import DEFAULT_SUITE, random_challenge

SUITES = [DEFAULT_SUITE, "OCRA-1:HOTP-SHA256-8:C-QN08"]
WARMUP_ROUNDS = 50


def measure(suite: str, rounds: int) -> list[float]:
    """Seconds per RESPOND, one sample per round."""
    challenges = [random_challenge(suite) for _ in range(rounds + WARMUP_ROUNDS)]
    samples: list[float] = []
    with (
        tempfile.TemporaryDirectory() as directory,
        FobEmulator(Path(directory) / "fob.json") as emulator,
        SerialFob(emulator.port) as fob,
    ):
        fob.provision(suite, secrets.token_bytes(20))
        for challenge in challenges[:WARMUP_ROUNDS]:
            fob.respond(challenge)
        for challenge in challenges[WARMUP_ROUNDS:]:
            started = time.perf_counter()
            fob.respond(challenge)
            samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--suite", action="append", dest="suites", help="an OCRA suite (repeatable)")
    args = parser.parse_args()
    print(f"RESPOND round trip, SerialFob -> FobEmulator over a pty, {args.rounds} rounds each")
    for suite in args.suites or SUITES:
        samples = sorted(measure(suite, args.rounds))
        median = statistics.median(samples)
        p99 = samples[math.ceil(0.99 * len(samples)) - 1]
        print(f"  {suite:<36} median {median * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
