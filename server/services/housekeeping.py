"""Removal of rows that can no longer matter: expired transactions, refresh tokens, session families,
temporary codes, pending enrollments. Idempotent and safe to run from every node at once."""

from __future__ import annotations

import threading

from sqlalchemy import delete
from sqlalchemy.orm import Session

from server.models import LoginTransaction, OidcCode, RefreshToken, SessionFamily, TemporaryCode, Token
from server.services.runtime import Runtime
from server.token_kinds import TokenState

# How often one node sweeps; expired rows are refused anyway, this only bounds table growth.
SWEEP_INTERVAL_SECONDS = 300
# Expired enrollments stay this long so a late activation is told "expired" rather than "not found".
EXPIRED_ENROLLMENT_GRACE_SECONDS = 86_400


def purge_expired(session: Session, rt: Runtime) -> None:
    now = rt.now()
    session.execute(delete(LoginTransaction).where(LoginTransaction.expires_at < now))
    session.execute(delete(RefreshToken).where(RefreshToken.expires_at < now))
    # A family outlives every token it issued (its expiry is pushed past them at each refresh).
    session.execute(delete(SessionFamily).where(SessionFamily.expires_at < now))
    session.execute(delete(TemporaryCode).where(TemporaryCode.expires_at < now))
    # A spent code stays while the family it issued may live: a replay of it still revokes that family.
    session.execute(delete(OidcCode).where(OidcCode.expires_at < now - rt.settings.refresh_ttl))
    session.execute(
        delete(Token).where(
            Token.state == TokenState.PENDING,
            Token.created_at <= now - rt.settings.pending_ttl - EXPIRED_ENROLLMENT_GRACE_SECONDS,
        )
    )
    session.commit()


class Sweeper:
    """Runs `purge_expired` at most once per interval per process."""

    def __init__(self) -> None:
        self._last = float("-inf")
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        with self._lock:
            if now - self._last < SWEEP_INTERVAL_SECONDS:
                return False
            self._last = now
            return True
