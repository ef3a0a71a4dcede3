"""Test fobs: an emulator on a real pseudo-terminal, driven by the real `SerialFob`, stored by the services.

This is what `tokenward fob provision` does, without its provisioning check: the fob's counter and the
token's both start at 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator
from devices.ocra import DEFAULT_SUITE, time_step_at
from server.models import Token, User
from server.services.audit import Actor
from server.services.fob import checked_suite, new_fob_secret, store_fob_token
from server.services.runtime import Runtime


@contextmanager
def emulated_fob(state_path: Path, *, serial: str) -> Iterator[tuple[FobEmulator, SerialFob]]:
    with FobEmulator(state_path, serial=serial) as emulator, SerialFob(emulator.port) as driver:
        yield emulator, driver


def provision(
    session: Session, rt: Runtime, driver: SerialFob, *, user: User, suite: str = DEFAULT_SUITE
) -> Token:
    parsed = checked_suite(suite)
    secret = new_fob_secret(parsed)
    driver.provision(parsed, secret)
    return store_fob_token(
        session,
        rt,
        user=user,
        serial=driver.hello().serial,
        suite=suite,
        secret=secret,
        description="test fob",
        actor=Actor.console(),
    )


def respond(driver: SerialFob, challenge: str, *, now: float, counter: int | None = None) -> str:
    """What the user reads off the fob; for a time suite the host passes the time step, as the console does
    (`now` may be off the server's clock, as a host's clock may be)."""
    suite = driver.hello().suite
    assert suite is not None
    time_step = time_step_at(suite, now) if suite.time_step is not None else None
    return driver.respond(challenge, counter=counter, time_step=time_step)
