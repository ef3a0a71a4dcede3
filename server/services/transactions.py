"""Login transactions: a second-factor challenge stored in the database: single use, bounded attempts."""

from __future__ import annotations

import secrets

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import TooManyAttempts, TransactionExpired
from server.models import LoginTransaction
from server.services.runtime import Runtime


def begin_transaction(
    session: Session,
    rt: Runtime,
    *,
    user_id: int | None,
    password_verified: bool,
    client_id: str | None = None,
    decoy_username: str | None = None,
    replaces_family: str | None = None,
) -> LoginTransaction:
    """`decoy_username`: a decoy (a name without usable tokens) that nothing completes, started for it."""
    now = rt.now()
    transaction = LoginTransaction(
        id=secrets.token_urlsafe(24),
        user_id=user_id,
        password_verified=password_verified,
        created_at=now,
        expires_at=now + rt.settings.transaction_ttl,
        attempts=0,
        max_attempts=rt.settings.transaction_attempts,
        client_id=client_id,
        decoy=decoy_username is not None,
        decoy_username=decoy_username,
        replaces_family=replaces_family,
    )
    session.add(transaction)
    session.flush()
    return transaction


def claim_attempt(session: Session, rt: Runtime, *, transaction_id: str) -> LoginTransaction:
    """Spends one attempt by a conditional UPDATE and commits it, so failed tries count even if the check
    that follows crashes."""
    now = rt.now()
    claimed = rows_changed(
        session.execute(
            update(LoginTransaction)
            .where(
                LoginTransaction.id == transaction_id,
                LoginTransaction.consumed_at.is_(None),
                LoginTransaction.expires_at > now,
                LoginTransaction.attempts < LoginTransaction.max_attempts,
            )
            .values(attempts=LoginTransaction.attempts + 1)
        )
    )
    session.commit()
    transaction = session.get(LoginTransaction, transaction_id) if len(transaction_id) <= 64 else None
    if transaction is None:
        raise TransactionExpired()
    if claimed != 1:
        if transaction.consumed_at is None and transaction.expires_at > now:
            raise TooManyAttempts()
        raise TransactionExpired()
    return transaction


def consume_transaction(session: Session, rt: Runtime, *, transaction_id: str) -> None:
    """Single use: exactly one concurrent caller sees the row count 1 (not committed here)."""
    consumed = rows_changed(
        session.execute(
            update(LoginTransaction)
            .where(LoginTransaction.id == transaction_id, LoginTransaction.consumed_at.is_(None))
            .values(consumed_at=rt.now())
        )
    )
    if consumed != 1:
        raise TransactionExpired()


def end_sign_ins_under_way(session: Session, rt: Runtime, *, user_id: int) -> None:
    """The user's unfinished sign-ins end (not committed): the password they proved is no longer the
    user's. On PostgreSQL this waits for a concurrent answer's commit, so a session it issued is already
    there for the revocation that follows."""
    session.execute(
        update(LoginTransaction)
        .where(LoginTransaction.user_id == user_id, LoginTransaction.consumed_at.is_(None))
        .values(consumed_at=rt.now())
    )
