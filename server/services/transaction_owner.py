"""Whose login transaction is this: the rate limits count a transaction's answers against its user."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import LoginTransaction, User

# Transaction ids are 32 characters (secrets.token_urlsafe(24)); the column holds at most 64.
MAX_TRANSACTION_ID_LENGTH = 64


def transaction_owner(session: Session, *, transaction_id: str) -> str | None:
    """The username of the transaction's user, or the name a decoy was started for (so that answers to a
    decoy are limited as a real user's are); None for an unknown id and for a passkey login's transaction.
    Expired or used ones still have their owner: answers to them are attempts against that user all the
    same."""
    if not transaction_id or len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
        return None
    return session.scalar(
        select(func.coalesce(User.username, LoginTransaction.decoy_username))
        .select_from(LoginTransaction)
        .outerjoin(User, LoginTransaction.user_id == User.id)
        .where(LoginTransaction.id == transaction_id)
    )
