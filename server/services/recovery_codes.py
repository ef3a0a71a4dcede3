"""Codes that stand in for a lost second factor: a user's recovery codes and an administrator's temporary
code. Both are 80 random bits (16 base32 letters in groups of four), shown once, stored as SHA-256 (a
guess-proof code needs no slow hash) and spent by one conditional UPDATE whose row count decides.

A login answered with one gives a `recovery` session: it may enroll a replacement factor, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import InvalidRecoveryCode, InvalidTemporaryCode, ValidationFailed
from server.models import RecoveryCode, TemporaryCode, User
from server.services.audit import Actor, record_event
from server.services.runtime import Runtime

RECOVERY_CODES_PER_SET = 10
CODE_BYTES = 10  # 80 bits
_CODE_LETTERS = 16


def new_code() -> str:
    letters = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().lower()
    return "-".join(letters[i : i + 4] for i in range(0, _CODE_LETTERS, 4))


def normalise(code: str) -> str | None:
    """What was typed, without spaces, dashes and case; None when it cannot be a code."""
    letters = "".join(code.split()).replace("-", "").lower()
    if len(letters) != _CODE_LETTERS or not all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in letters):
        return None
    return "-".join(letters[i : i + 4] for i in range(0, _CODE_LETTERS, 4))


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_recovery_codes(session: Session, rt: Runtime, *, user: User, actor: Actor) -> list[str]:
    """A new set of codes; any earlier set stops working. Commits."""
    now = rt.now()
    codes = [new_code() for _ in range(RECOVERY_CODES_PER_SET)]
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_hash(code), created_at=now, used_at=None) for code in codes
    )
    record_event(
        session, actor=actor, action="recovery_codes.create", result="success", now=now, target=user.username
    )
    session.commit()
    return codes


def remaining_recovery_codes(session: Session, *, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def consume_recovery_code(session: Session, rt: Runtime, *, user_id: int, code: str) -> None:
    """Spends the code (not committed here); InvalidRecoveryCode when it is not one of the user's unused
    codes."""
    normalised = normalise(code)
    spent = normalised is not None and rows_changed(
        session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == _hash(normalised),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=rt.now())
        )
    )
    if spent != 1:
        raise InvalidRecoveryCode()


@dataclass(frozen=True)
class IssuedTemporaryCode:
    code: str
    expires_at: float


def issue_temporary_code(
    session: Session, rt: Runtime, *, user: User, ttl_seconds: int, actor: Actor
) -> IssuedTemporaryCode:
    """A single-use code for one login of `user`; replaces any earlier one. Commits."""
    if not 60 <= ttl_seconds <= rt.settings.temporary_code_max_ttl:
        most = rt.settings.temporary_code_max_ttl
        raise ValidationFailed(f"ttl: 60 to {most} seconds (TOKENWARD_TEMPORARY_CODE_MAX_TTL)")
    now = rt.now()
    code = new_code()
    session.execute(delete(TemporaryCode).where(TemporaryCode.user_id == user.id))
    session.add(
        TemporaryCode(
            user_id=user.id,
            code_hash=_hash(code),
            issued_by=actor.name[:64],
            created_at=now,
            expires_at=now + ttl_seconds,
            used_at=None,
        )
    )
    record_event(
        session, actor=actor, action="temporary_code.issue", result="success", now=now, target=user.username
    )
    session.commit()
    return IssuedTemporaryCode(code=code, expires_at=now + ttl_seconds)


def has_temporary_code(session: Session, rt: Runtime, *, user_id: int) -> bool:
    return (
        session.scalar(
            select(TemporaryCode.id).where(
                TemporaryCode.user_id == user_id,
                TemporaryCode.used_at.is_(None),
                TemporaryCode.expires_at > rt.now(),
            )
        )
        is not None
    )


def consume_temporary_code(session: Session, rt: Runtime, *, user_id: int, code: str) -> None:
    normalised = normalise(code)
    now = rt.now()
    spent = normalised is not None and rows_changed(
        session.execute(
            update(TemporaryCode)
            .where(
                TemporaryCode.user_id == user_id,
                TemporaryCode.code_hash == _hash(normalised),
                TemporaryCode.used_at.is_(None),
                TemporaryCode.expires_at > now,
            )
            .values(used_at=now)
        )
    )
    if spent != 1:
        raise InvalidTemporaryCode()
