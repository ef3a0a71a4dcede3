"""An Access-Request's question put to the sign-in services: the RADIUS door's business logic.

Three shapes of PAP request (RFC 2865), all through the services the HTTP doors use (`login`, `verify`), so
single use, lockout, attempt budgets and audit are the same:

- one round: User-Password is the password followed by a one-time code (`verify_one_step` with password);
- two rounds: the password alone opens a transaction (`login_with_password`, owned by the NAS's client) and
  is answered with Access-Challenge; the next request carries its State and the code, fob response,
  recovery code or temporary code (`check_transaction_answer`);
- code only, for a NAS that checks the password itself (`verify_one_step` without password).

Refusals are the services' typed errors; the door turns them into Access-Reject.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.errors import (
    InvalidCredentials,
    InvalidFobResponse,
    InvalidOtp,
    InvalidRecoveryCode,
    InvalidTemporaryCode,
    NoUsableToken,
    TransactionExpired,
)
from server.services import otp
from server.services.audit import Actor
from server.services.login import SecondFactorChallenge, login_with_password
from server.services.one_step import check_one_step
from server.services.radius_clients import RadiusPeer
from server.services.recovery_codes import normalise
from server.services.runtime import Runtime
from server.services.transaction_owner import transaction_owner
from server.services.users import find_user_with_tokens
from server.services.verify import Verified, check_transaction_answer

STATE_PREFIX = "tw1"
# Methods a RADIUS round can carry (a WebAuthn assertion needs a browser).
RADIUS_METHODS = ("otp", "fob", "recovery", "temporary_code")
_PROMPTS = {
    "otp": "the code from your authenticator",
    "recovery": "a recovery code",
    "temporary_code": "your temporary code",
}
# The wrong-answer error of each answer field: the next field that could fit is tried after it.
_WRONG = {
    "otp": InvalidOtp,
    "fob_response": InvalidFobResponse,
    "recovery_code": InvalidRecoveryCode,
    "temporary_code": InvalidTemporaryCode,
}


@dataclass(frozen=True)
class AccessAccepted:
    username: str
    method: str
    acr: str
    amr: tuple[str, ...]


@dataclass(frozen=True)
class AccessChallenged:
    username: str
    state: bytes  # opaque to the NAS, returned verbatim with the answer
    prompt: str  # the Reply-Message: the methods, and a fob's challenge


def answer_access_request(
    session: Session,
    rt: Runtime,
    *,
    peer: RadiusPeer,
    username: str,
    password: str,
    state: bytes | None,
    actor: Actor,
) -> AccessAccepted | AccessChallenged:
    """Raises the services' TokenwardError for every refusal. The caller commits an acceptance."""
    if state is not None:
        return _answer_challenge(
            session, rt, peer=peer, username=username, answer=password, state=state, actor=actor
        )
    if peer.code_only:
        verified = check_one_step(
            session, rt, username=username, code=password, password=None, client=peer.client, actor=actor
        )
        return _accepted(verified)
    return _password_first(session, rt, peer=peer, username=username, value=password, actor=actor)


def _password_first(
    session: Session, rt: Runtime, *, peer: RadiusPeer, username: str, value: str, actor: Actor
) -> AccessAccepted | AccessChallenged:
    """Password and code in one field, split at the length of the user's OTP tokens' codes; when no split
    holds the password, the whole field is the password and the answer is a challenge."""
    _user, tokens = find_user_with_tokens(session, username=username, types=otp.FACTOR.token_types)
    lengths = sorted({token.digits or 6 for token in tokens}, reverse=True)
    session.rollback()  # end the read: SQLite holds the write lock for a transaction's whole length
    for digits in lengths:
        password, code = value[:-digits], value[-digits:]
        if password and code.isascii() and code.isdigit() and "otp" in peer.client.allowed_methods.split():
            try:
                verified = check_one_step(
                    session,
                    rt,
                    username=username,
                    code=code,
                    password=password,
                    client=peer.client,
                    actor=actor,
                )
            except InvalidCredentials:
                continue  # not this split: perhaps the whole field is the password
            return _accepted(verified)
    started = login_with_password(
        session, rt, username=username, password=value, actor=actor, client=peer.client
    )
    if not isinstance(started, SecondFactorChallenge):  # login_with_password refuses enroll sessions to a NAS
        raise NoUsableToken()
    return _challenged(username, started)


def _challenged(username: str, started: SecondFactorChallenge) -> AccessChallenged:
    methods = [method for method in started.methods if method in RADIUS_METHODS]
    if not methods:
        raise NoUsableToken()
    prompts = []
    for method in methods:
        if method == "fob":
            prompts.append(f"your fob's response to challenge {started.challenges['fob']['challenge']}")
        else:
            prompts.append(_PROMPTS[method])
    state = " ".join((STATE_PREFIX, started.transaction_id, ",".join(methods))).encode()
    return AccessChallenged(username, state, "Enter " + " or ".join(prompts))


def parse_state(state: bytes) -> tuple[str, list[str]]:
    """The transaction id and methods a State of ours names; TransactionExpired for anything else."""
    try:
        prefix, transaction_id, methods = state.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise TransactionExpired() from None
    if prefix != STATE_PREFIX or not transaction_id:
        raise TransactionExpired()
    return transaction_id, [method for method in methods.split(",") if method in RADIUS_METHODS]


def answer_fields(answer: str, methods: list[str]) -> list[str]:
    """Which answer fields `answer` could be, in the order to try them (each try spends an attempt)."""
    if normalise(answer) is not None:
        fields = [("temporary_code", "temporary_code"), ("recovery", "recovery_code")]
    else:
        fields = [("otp", "otp"), ("fob", "fob_response")]
    return [field for method, field in fields if method in methods]


def _answer_challenge(
    session: Session,
    rt: Runtime,
    *,
    peer: RadiusPeer,
    username: str,
    answer: str,
    state: bytes,
    actor: Actor,
) -> AccessAccepted:
    transaction_id, methods = parse_state(state)
    owner = transaction_owner(session, transaction_id=transaction_id)
    session.rollback()
    if owner is None or owner != username:
        raise TransactionExpired()
    fields = answer_fields(answer, methods) or ["otp"]
    for index, field in enumerate(fields):
        try:
            verified = check_transaction_answer(
                session,
                rt,
                transaction_id=transaction_id,
                answer_field=field,
                answer=answer,
                client=peer.client,
                actor=actor,
            )
        except _WRONG[field]:
            if index + 1 < len(fields):
                continue
            raise
        return _accepted(verified)
    raise AssertionError("unreachable: the last field re-raises")


def _accepted(verified: Verified) -> AccessAccepted:
    return AccessAccepted(
        verified.user.username, verified.method, verified.earned.acr, tuple(verified.earned.amr)
    )
