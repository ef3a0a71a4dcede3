"""Per-token consecutive-failure counters. A token is locked while its count is at the threshold."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Token


def is_locked(token: Token, *, threshold: int) -> bool:
    return token.fail_count >= threshold


def record_failures(session: Session, *, token_ids: Iterable[str]) -> None:
    """One atomic increment per token, so concurrent failures all count."""
    ids = list(token_ids)
    if ids:
        session.execute(update(Token).where(Token.id.in_(ids)).values(fail_count=Token.fail_count + 1))


def unlock_token(session: Session, *, token_id: str) -> None:
    session.execute(update(Token).where(Token.id == token_id).values(fail_count=0))
