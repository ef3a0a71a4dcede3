"""All-or-nothing fob provisioning: handshake, write a fresh secret, prove it with a test challenge, store.

Nothing is written to the fob before every check that can be made without it has passed (suite, user,
serial not taken). Once PROVISION has been sent, any failure (an unplugged cable, a wrong answer, a database
error, Ctrl-C) tries to WIPE the fob again, and the message says what state the fob is left in. The token is
stored in one database transaction at the very end, so a failure never leaves a half-written token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from devices.fob.driver import SerialFob
from devices.fob.errors import FobError, FobRefused
from devices.fob.protocol import FobIdentity
from devices.ocra import OcraError, OcraSuite, ocra_response, random_challenge, time_step_at
from provisioning.console import CONSOLE_ACTOR
from server.errors import Conflict, TokenwardError
from server.models import User
from server.services import fob, users
from server.services.runtime import Runtime

# The steps a progress display shows, in order.
STEPS = ("handshake", "writing the secret", "checking the fob's answer", "storing the token")
StepReporter = Callable[[str], None]


class ProvisionFailed(Exception):
    """Provisioning failed; the message (one line, no secret) says what state the fob is in."""


@dataclass(frozen=True)
class Provisioned:
    serial: str
    username: str
    suite: str
    token_id: str
    port: str
    counter: int  # the counter value the fob (and the token) will use next


@dataclass(frozen=True)
class _Plan:
    identity: FobIdentity
    user: User
    suite: OcraSuite
    description: str


def wipe_hint(port: str) -> str:
    return f"wipe it with `tokenward fob wipe --port {port} --yes`"


def _reason(err: BaseException) -> str:
    if isinstance(err, TokenwardError):
        return err.detail
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    return str(err)


def _plan(
    driver: SerialFob, session: Session, *, username: str, suite_text: str, description: str | None
) -> _Plan:
    """Every check that needs no write to the fob."""
    suite = fob.checked_suite(suite_text)
    user = users.get_user(session, username=username)
    if user.disabled:
        raise Conflict(f"user {username} is disabled")
    identity = driver.hello()
    if identity.provisioned:
        raise ProvisionFailed(
            f"fob {identity.serial} is already provisioned; {wipe_hint(driver.port)}, then provision it again"
        )
    wanted = [name for name, needed in (("counter", suite.counter), ("time", suite.time_step)) if needed]
    missing = [name for name in wanted if name not in identity.capabilities]
    if missing:
        raise ProvisionFailed(f"fob {identity.serial} cannot run {suite}: it lacks {', '.join(missing)}")
    fob.require_serial_free(session, serial=identity.serial)
    session.rollback()  # no database lock is held while the fob works (SQLite's BEGIN IMMEDIATE)
    return _Plan(identity, user, suite, description if description is not None else f"fob {identity.serial}")


def _check_answer(driver: SerialFob, rt: Runtime, *, suite: OcraSuite, secret: bytes) -> int:
    """A test challenge the fob must answer as `devices.ocra` does; returns the counter it uses next."""
    challenge = random_challenge(suite)
    time_step = time_step_at(suite, rt.now()) if suite.time_step is not None else None
    counter = 0 if suite.counter else None  # a fresh fob counts from 0
    expected = ocra_response(suite, secret, question=challenge, counter=counter, time_step=time_step)
    answer = driver.respond(challenge, time_step=time_step)
    if not hmac.compare_digest(expected.encode(), answer.encode()):
        raise ProvisionFailed("the fob's answer to the test challenge is wrong")
    return 1 if suite.counter else 0


def _undo(driver: SerialFob, *, serial: str, written: bool) -> str:
    """Wipes the fob after a failure; says what state it is left in."""
    try:
        driver.wipe(serial)
    except (FobError, OSError):
        holds = "holds" if written else "may hold"
        return f"the fob {holds} a secret that no token uses: {wipe_hint(driver.port)}"
    return "the fob was wiped"


def provision_fob(
    driver: SerialFob,
    session: Session,
    rt: Runtime,
    *,
    username: str,
    suite_text: str,
    description: str | None = None,
    report: StepReporter = lambda step: None,
) -> Provisioned:
    """Writes a fresh secret into a blank fob and stores its token, or leaves no token (ProvisionFailed)."""
    report(STEPS[0])
    try:
        plan = _plan(driver, session, username=username, suite_text=suite_text, description=description)
    except (FobError, TokenwardError) as err:
        raise ProvisionFailed(f"{_reason(err)}; nothing was written to the fob") from err
    secret = fob.new_fob_secret(plan.suite)
    report(STEPS[1])
    try:
        driver.provision(plan.suite, secret)
    except FobRefused as err:
        raise ProvisionFailed(f"{err}; nothing was written to the fob") from err
    except (FobError, KeyboardInterrupt) as err:  # the fob may or may not have committed it
        state = _undo(driver, serial=plan.identity.serial, written=False)
        raise ProvisionFailed(f"{_reason(err)}; no token was stored and {state}") from err
    try:
        return _check_and_store(driver, session, rt, plan=plan, secret=secret, report=report)
    except (FobError, TokenwardError, ProvisionFailed, OcraError, KeyboardInterrupt) as err:
        session.rollback()
        state = _undo(driver, serial=plan.identity.serial, written=True)
        raise ProvisionFailed(f"{_reason(err)}; no token was stored and {state}") from err


def _check_and_store(
    driver: SerialFob, session: Session, rt: Runtime, *, plan: _Plan, secret: bytes, report: StepReporter
) -> Provisioned:
    report(STEPS[2])
    counter = _check_answer(driver, rt, suite=plan.suite, secret=secret)
    report(STEPS[3])
    token = fob.store_fob_token(
        session,
        rt,
        user=plan.user,
        serial=plan.identity.serial,
        suite=str(plan.suite),
        secret=secret,
        description=plan.description,
        actor=CONSOLE_ACTOR,
        counter=counter,
    )
    return Provisioned(
        serial=plan.identity.serial,
        username=plan.user.username,
        suite=str(plan.suite),
        token_id=token.id,
        port=driver.port,
        counter=counter,
    )
