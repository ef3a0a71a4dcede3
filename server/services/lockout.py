"""Per-token consecutive-failure counters and self-releasing locks.

A guess is counted before it is checked, by one statement that also checks the threshold: of any number of
concurrent wrong guesses, only as many as the threshold allows are ever evaluated. A token at the threshold
is locked until `locked_until` (TOKENWARD_LOCKOUT_RELEASE, doubled for each consecutive lock, at most
TOKENWARD_LOCKOUT_RELEASE_MAX); an administrator's unlock releases it at once, a good answer clears it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import ColumnElement, Float, Integer, Table, Update, and_, bindparam, case, or_, update
from sqlalchemy.orm import Session

from server.db import Executor
from server.models import Token
from server.services.audit import Actor, record_event
from server.services.runtime import Runtime
from server.token_kinds import TokenState

if TYPE_CHECKING:
    from server.services.verify_rows import TokenRow

# A token loaded by the ORM, or one read as a plain row (server.services.verify_rows).
AnyToken = TypeVar("AnyToken", "Token", "TokenRow")

# Counting a guess, built once as a Core statement (it runs on every verify; building it per call cost more
# Python than running it).
_TOKENS = cast(Table, Token.__table__)
_RELEASED = and_(_TOKENS.c.locked_until.is_not(None), _TOKENS.c.locked_until <= bindparam("now", type_=Float))


def _claim(which: ColumnElement[bool]) -> Update:
    return (
        update(_TOKENS)
        .where(
            which,
            _TOKENS.c.state == TokenState.ACTIVE,  # not one disabled or removed since it was read
            or_(_TOKENS.c.fail_count < bindparam("threshold", type_=Integer), _RELEASED),
        )
        .values(
            fail_count=case((_RELEASED, 1), else_=_TOKENS.c.fail_count + 1),
            locked_until=case((_RELEASED, None), else_=_TOKENS.c.locked_until),
        )
        .returning(_TOKENS.c.id)
    )


# One token (the usual case, and a decoy) by `=`; several by IN, whose list is expanded at every execution.
_CLAIM_GUESS = _claim(_TOKENS.c.id == bindparam("token_id"))
_CLAIM_GUESSES = _claim(_TOKENS.c.id.in_(bindparam("token_ids", expanding=True)))


def is_locked(token: Token, *, threshold: int, now: float) -> bool:
    return token.fail_count >= threshold and (token.locked_until is None or token.locked_until > now)


def release_time(rt: Runtime, *, lock_count: int) -> float:
    """When a lock taken now releases: the base time doubled per earlier consecutive lock, capped."""
    settings = rt.settings
    seconds: int = min(settings.lockout_release * 2 ** min(lock_count, 32), settings.lockout_release_max)
    return rt.now() + seconds


def claim_guesses(session: Executor, rt: Runtime, *, tokens: Sequence[AnyToken]) -> list[AnyToken]:
    """Counts one guess against each token that may still be tried and returns those (not committed: the
    caller commits the count with the attempt's outcome). A released lock starts counting afresh."""
    if not tokens:
        return []
    parameters: dict[str, Any] = {"now": rt.now(), "threshold": rt.settings.lockout_threshold}
    if len(tokens) == 1:
        statement, parameters["token_id"] = _CLAIM_GUESS, tokens[0].id
    else:
        statement, parameters["token_ids"] = _CLAIM_GUESSES, [token.id for token in tokens]
    claimed = set(session.execute(statement, parameters).scalars())
    return [token for token in tokens if token.id in claimed]


def lock_exhausted(session: Executor, rt: Runtime, *, token_ids: Sequence[str]) -> None:
    """After a failed guess: locks the tokens whose count reached the threshold, each for its release time,
    and audits each new lock (not committed here)."""
    if not token_ids:
        return
    threshold = rt.settings.lockout_threshold
    reached = session.execute(
        update(Token)
        .where(Token.id.in_(token_ids), Token.fail_count >= threshold, Token.locked_until.is_(None))
        .values(lock_count=Token.lock_count + 1)
        .returning(Token.id, Token.lock_count)
        .execution_options(synchronize_session=False)
    ).all()
    for token_id, lock_count in reached:
        session.execute(
            update(Token)
            .where(Token.id == token_id)
            .values(locked_until=release_time(rt, lock_count=lock_count - 1))
            .execution_options(synchronize_session=False)
        )
        record_event(
            session,
            actor=Actor(name="system"),
            action="token.lock",
            result="success",
            now=rt.now(),
            target=f"token:{token_id}",
            reason="token_locked",
        )


def clear_locks(session: Executor, *, token: Token | TokenRow) -> None:
    """After a good answer: consecutive locks start from the base time again."""
    if token.lock_count or token.locked_until is not None:
        session.execute(
            update(Token)
            .where(Token.id == token.id)
            .values(lock_count=0, locked_until=None)
            .execution_options(synchronize_session=False)
        )


def unlock_token(session: Session, *, token_id: str) -> None:
    session.execute(
        update(Token).where(Token.id == token_id).values(fail_count=0, lock_count=0, locked_until=None)
    )
