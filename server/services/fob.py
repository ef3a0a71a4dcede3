"""Hardware fobs: the OCRA (RFC 6287) challenge-response login factor, and storing a provisioned fob.

`devices.ocra` computes responses; we add what it leaves to the caller: a server-chosen challenge kept on the
login transaction (so any node can check the answer), the counter look-ahead and time window, single use by
one conditional UPDATE, and the suites a server can verify. The console talks to the fob itself
(`provisioning/fob.py`); nothing here reaches into a port.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from itertools import product
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devices.ocra import DEFAULT_SUITE, OcraError, OcraSuite, ocra_response, random_challenge, time_step_at
from server.db import rows_changed
from server.errors import Conflict, InvalidFobResponse, TokenwardError, ValidationFailed
from server.models import LoginTransaction, Token, User, new_id
from server.services.account_state import factor_activated
from server.services.audit import Actor, record_event, record_failure
from server.services.enrollment import MAX_TOKENS_PER_USER, count_tokens
from server.services.factors import Accepted
from server.services.runtime import Runtime
from server.services.token_secrets import seal_secret, token_secret
from server.token_kinds import TokenState, TokenType

__all__ = [
    "COUNTER_LOOKAHEAD",
    "FACTOR",
    "TIME_WINDOW_SECONDS",
    "FobMatch",
    "checked_suite",
    "fob_token_by_serial",
    "new_fob_secret",
    "require_serial_free",
    "store_fob_token",
]

log = logging.getLogger(__name__)

# Responses a user may have asked the fob for without logging in with them (a `fob respond` to try it out).
COUNTER_LOOKAHEAD = 10
# A minute either way (at least one step): reading the response off, typing it, and the fob host's clock
# being a little off the server's.
TIME_WINDOW_SECONDS = 60
# The key as long as the suite's HMAC output (RFC 4226 §4 asks for at least 128 bits; more buys nothing).
SECRET_BYTES = {"SHA1": 20, "SHA256": 32, "SHA512": 64}


def checked_suite(text: str) -> OcraSuite:
    """The suite, if this server can verify its responses; `ValidationFailed` says why not."""
    try:
        suite = OcraSuite.parse(text)
    except OcraError as err:
        raise ValidationFailed(f"not a valid OCRA suite: {err}") from err
    if suite.pin_hash_name is not None:
        raise ValidationFailed(
            "PIN suites (P) are not supported: the server stores no PIN hash to check the response against"
        )
    if suite.session_length is not None:
        raise ValidationFailed("session suites (S) are not supported: a login has no shared session data")
    if suite.digits == 0:
        raise ValidationFailed("suites answering the whole HMAC (-0) are not supported: too long to type")
    if suite.time_step is not None and suite.time_step.seconds == 0:
        raise ValidationFailed("a 0H time step has no period to count")
    return suite


def _verifiable(text: str | None) -> OcraSuite | None:
    try:
        return checked_suite(text or "")
    except ValidationFailed:
        return None


def new_fob_secret(suite: OcraSuite) -> bytes:
    return secrets.token_bytes(SECRET_BYTES[suite.hash_name])


@dataclass(frozen=True)
class FobMatch:
    """Where a response matched: the counter and/or time step it used (None when the suite has none)."""

    counter: int | None
    time_step: int | None


def _candidates(rt: Runtime, token: Token, suite: OcraSuite) -> list[tuple[int | None, int | None]]:
    counters: list[int | None] = [None]
    steps: list[int | None] = [None]
    if suite.counter:
        counters = list(range(token.counter, token.counter + COUNTER_LOOKAHEAD + 1))
    if suite.time_step is not None:
        current = time_step_at(suite, rt.now())
        width = max(1, math.ceil(TIME_WINDOW_SECONDS / suite.time_step.seconds))
        steps = list(range(max(0, current - width), current + width + 1))
    return list(product(counters, steps))


def find_fob_match(
    rt: Runtime, token: Token, suite: OcraSuite, key: bytes, *, challenge: str, response: str
) -> FobMatch | None:
    """The smallest counter / time step at which `response` answers `challenge`, else None. Every candidate
    is computed and compared in constant time, so the time taken does not tell which one matched."""
    found: FobMatch | None = None
    for counter, time_step in _candidates(rt, token, suite):
        expected = ocra_response(suite, key, question=challenge, counter=counter, time_step=time_step)
        if hmac.compare_digest(expected.encode(), response.encode()) and found is None:
            found = FobMatch(counter, time_step)
    return found


def consume_fob_match(session: Session, rt: Runtime, *, token: Token, match: FobMatch) -> None:
    """Makes the response single use by one conditional UPDATE whose row count decides (not committed)."""
    query = update(Token).where(Token.id == token.id)
    values: dict[str, Any] = {"fail_count": 0, "last_used_at": rt.now()}
    if match.counter is not None:
        query = query.where(Token.counter == token.counter)
        values["counter"] = match.counter + 1
    if match.time_step is not None:
        query = query.where(or_(Token.last_time_step.is_(None), Token.last_time_step < match.time_step))
        values["last_time_step"] = match.time_step
    if rows_changed(session.execute(query.values(**values))) != 1:
        raise InvalidFobResponse("This fob response was already used")


def _normalised(answer: Any) -> str:
    response = str(answer).replace(" ", "").replace("-", "")
    if not response.isascii() or not response.isdigit():
        raise InvalidFobResponse()
    return response


def _first_suite(tokens: list[Token]) -> OcraSuite | None:
    return next((s for s in (_verifiable(token.ocra_suite) for token in tokens) if s is not None), None)


def _show(transaction: LoginTransaction, suite: OcraSuite) -> dict[str, Any]:
    transaction.fob_challenge = random_challenge(suite)
    return {"challenge": transaction.fob_challenge, "suite": str(suite)}


class FobFactor:
    """OCRA challenge-response: the server shows a challenge, the user's fob answers it."""

    method = "fob"
    answer_field = "fob_response"
    refusal_may_write = True
    token_types: tuple[str, ...] = (TokenType.FOB,)

    def challenge(
        self, session: Session, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token]
    ) -> dict[str, Any] | None:
        """One challenge per transaction, in the format of the first fob the server can verify; the
        user's other fobs answer it too when their suite accepts it."""
        suite = _first_suite(tokens)
        return None if suite is None else _show(transaction, suite)

    def challenge_any(
        self, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token]
    ) -> dict[str, Any]:
        """Always a challenge (a password-less challenge must look the same for every name): in the suite
        of the user's first fob, else in the default suite."""
        fobs = [token for token in tokens if token.type in self.token_types]
        return _show(transaction, _first_suite(fobs) or OcraSuite.parse(DEFAULT_SUITE))

    def verify(
        self,
        session: Session,
        rt: Runtime,
        *,
        transaction: LoginTransaction | None,
        tokens: list[Token],
        answer: Any,
    ) -> Accepted:
        if transaction is None or transaction.fob_challenge is None:
            raise InvalidFobResponse("This login did not ask for a fob response")
        response = _normalised(answer)
        found: tuple[Token, FobMatch] | None = None
        for token in tokens:
            suite = _verifiable(token.ocra_suite)
            if suite is None or len(response) != suite.digits:
                continue
            try:
                match = find_fob_match(
                    rt,
                    token,
                    suite,
                    token_secret(rt, token),
                    challenge=transaction.fob_challenge,
                    response=response,
                )
            except OcraError:
                continue  # this fob's suite does not accept the challenge's format
            if match is not None and found is None:
                found = (token, match)
        if found is None:
            raise InvalidFobResponse()
        consume_fob_match(session, rt, token=found[0], match=found[1])
        return Accepted(token=found[0], amr=("hwk",))


FACTOR = FobFactor()


def fob_token_by_serial(session: Session, *, serial: str) -> Token | None:
    return session.scalar(select(Token).where(Token.serial == serial))


def require_serial_free(session: Session, *, serial: str) -> None:
    """Refuses a serial that a token already has (checked before a fob is written, and again on insert)."""
    token = fob_token_by_serial(session, serial=serial)
    if token is not None:
        raise Conflict(
            f"serial {serial} already has token {token.id}; delete it "
            f"(DELETE /api/v1/admin/tokens/{token.id}) before provisioning this fob again"
        )


def store_fob_token(
    session: Session,
    rt: Runtime,
    *,
    user: User,
    serial: str,
    suite: str,
    secret: bytes,
    description: str,
    actor: Actor,
    counter: int = 0,
) -> Token:
    """Stores a provisioned fob as an active token of `user` and commits once; audited either way.

    `counter` is the value the fob will use next (1 after the provisioning check consumed 0)."""
    try:
        token = _new_fob_token(
            session, rt, user=user, serial=serial, suite=suite, secret=secret, description=description
        )
        token.counter = counter
        session.add(token)
        session.flush()
    except IntegrityError as err:
        session.rollback()
        _audit_failure(session, rt, actor=actor, serial=serial, reason=Conflict.code)
        raise Conflict(f"serial {serial} already has a token") from err
    except TokenwardError as err:
        session.rollback()
        _audit_failure(session, rt, actor=actor, serial=serial, reason=err.code)
        raise
    factor_activated(session, rt, user_id=user.id)
    record_event(
        session,
        actor=actor,
        action="token.provision",
        result="success",
        now=rt.now(),
        target=f"token:{token.id} serial:{serial} user:{user.username}",
    )
    session.commit()
    log.info("provisioned fob %s for %s", serial, user.username)
    return token


def _new_fob_token(
    session: Session, rt: Runtime, *, user: User, serial: str, suite: str, secret: bytes, description: str
) -> Token:
    parsed = checked_suite(suite)
    if user.disabled:
        raise Conflict("The user is disabled")
    if not SECRET_BYTES["SHA1"] <= len(secret) <= SECRET_BYTES["SHA512"]:
        raise ValidationFailed("a fob secret is 20 to 64 bytes")
    require_serial_free(session, serial=serial)
    if count_tokens(session, user=user) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"The user has {MAX_TOKENS_PER_USER} tokens; remove one first")
    now = rt.now()
    token = Token(
        id=new_id(),  # set before sealing: the id is the seal's associated data
        user_id=user.id,
        type=TokenType.FOB,
        state=TokenState.ACTIVE,
        description=description[:128],
        serial=serial,
        digits=parsed.digits,
        fail_count=0,
        ocra_suite=str(parsed),
        created_at=now,
        activated_at=now,
    )
    seal_secret(rt, token, secret)
    return token


def _audit_failure(session: Session, rt: Runtime, *, actor: Actor, serial: str, reason: str) -> None:
    record_failure(
        session,
        actor=actor,
        action="token.provision",
        now=rt.now(),
        target=f"serial:{serial}",
        reason=reason,
    )
