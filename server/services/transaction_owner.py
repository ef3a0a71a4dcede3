"""Whose login transaction is this: the rate limits count a transaction's answers against its user."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import LoginTransaction, User

# Transaction ids are 32 characters (secrets.token_urlsafe(24)); the column holds at most 64.
MAX_TRANSACTION_ID_LENGTH = 64


def transaction_owner(session: Session, *, transaction_id: str) -> str | None:
    """The username of the transaction's user; None for an unknown id and for transactions without a user
    (a passkey login, or the decoy of an unknown username). Expired or used ones still have their owner:
    answers to them are attempts against that user all the same."""
    if not transaction_id or len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
        return None
    return session.scalar(
        select(User.username)
        .join(LoginTransaction, LoginTransaction.user_id == User.id)
        .where(LoginTransaction.id == transaction_id)
    )
