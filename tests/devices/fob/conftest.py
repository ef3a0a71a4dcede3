"""Fob fixtures: an emulator on a real pseudo-terminal, or the bench fob given with `--fob-port`.

Tests that take `fob` run unchanged against either; tests that need fault injection or the emulator's state
take `emulator` and are skipped on a bench fob.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator

SERIAL = "TWTEST01"


@pytest.fixture
def bench_port(request: pytest.FixtureRequest) -> str | None:
    port: str | None = request.config.getoption("--fob-port")
    return port


@pytest.fixture
def emulator(tmp_path: Path, bench_port: str | None) -> Iterator[FobEmulator]:
    if bench_port is not None:
        pytest.skip("needs the emulator (fault injection or its state file), not a bench fob")
    emulated = FobEmulator(tmp_path / "fob-state.json", serial=SERIAL)
    with emulated:
        yield emulated


@pytest.fixture
def fob_port(request: pytest.FixtureRequest, bench_port: str | None) -> str:
    if bench_port is not None:
        return bench_port
    emulated: FobEmulator = request.getfixturevalue("emulator")
    return emulated.port


@pytest.fixture
def fob(fob_port: str) -> Iterator[SerialFob]:
    """A driver on a blank fob (a provisioned bench fob is wiped first)."""
    with SerialFob(fob_port) as driver:
        identity = driver.hello()
        if identity.provisioned:
            driver.wipe(identity.serial)
        yield driver


@pytest.fixture
def quick_timeout_seconds() -> float:
    """Short enough that a test waiting out every retry stays under a second; a pty answers in < 1 ms."""
    return 0.15


@pytest.fixture
def quick_fob(emulator: FobEmulator, quick_timeout_seconds: float) -> Iterator[SerialFob]:
    """A driver with a short timeout, for tests that wait for timeouts on purpose."""
    with SerialFob(emulator.port, timeout_seconds=quick_timeout_seconds) as driver:
        yield driver
