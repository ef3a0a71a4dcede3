"""Start-up time of `tokenward` console commands, each run as a fresh process the way an admin runs it.

    .venv/bin/python benchmarks/console_start.py [--runs 11]

Prints, per command, the median wall time and the median CPU time (user + system, of the process and its
children) over the runs, after one warm-up run; asserts nothing. CPU time is the steadier figure on a machine
that is busy with other work. `fob respond` answers a challenge from an emulated fob on a pseudo-terminal
(served by this process), so it includes the serial round trip; `user list` opens a SQLite database in a
temporary instance directory (the app, the schema check and one query).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator
from devices.ocra import DEFAULT_SUITE, random_challenge

TOKENWARD = shutil.which("tokenward", path=str(Path(sys.executable).parent)) or "tokenward"


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `tokenward argv`, which must succeed."""
    walls: list[float] = []
    cpus: list[float] = []
    for run in range(runs + 1):
        cpu_before, started = _children_cpu_seconds(), time.perf_counter()
        subprocess.run([TOKENWARD, *argv], env=env, check=True, capture_output=True, timeout=120)
        wall, cpu = time.perf_counter() - started, _children_cpu_seconds() - cpu_before
        if run > 0:  # the first run fills the operating system's file cache (and migrates `user list`)
            walls.append(wall)
            cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, FobEmulator(Path(directory) / "fob.json") as emulator:
        with SerialFob(emulator.port) as fob:
            fob.provision(DEFAULT_SUITE, secrets.token_bytes(20))
        env = {name: value for name, value in os.environ.items() if not name.startswith("TOKENWARD_")}
        env["TOKENWARD_INSTANCE_DIR"] = str(Path(directory) / "instance")
        # `user list` needs an existing instance (the console creates none): one user added first.
        subprocess.run(
            [TOKENWARD, "user", "add", "admin", "--no-password"], env=env, check=True, capture_output=True
        )
        commands = [
            ["--help"],
            ["--version"],
            ["fob", "respond", "--help"],
            ["fob", "respond", "--port", emulator.port, random_challenge(DEFAULT_SUITE)],
            ["user", "list"],
        ]
        print(f"tokenward start-up, median of {args.runs} runs (after one warm-up), {os.cpu_count()} CPUs")
        for argv in commands:
            wall, cpu = measure(argv, env, args.runs)
            shown = " ".join("PORT" if part == emulator.port else part for part in argv)
            print(f"  {shown:<36} wall {wall:6.3f} s   cpu {cpu:6.3f} s")


if __name__ == "__main__":
    main()
