"""Enrollment is a state of the account, not a kind of session: an account without an active factor may be
given an enroll session; the moment a factor activates, the account is enrolled for good and every enroll
session of it (password-only or recovery) ends."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import User
from server.services.assurance import ENROLL_SCOPE
from server.services.runtime import Runtime
from server.services.sessions import revoke_user_sessions


def factor_activated(session: Session, rt: Runtime, *, user_id: int | None) -> None:
    """Call in the transaction that makes one of the user's tokens active (not committed here)."""
    if user_id is None:
        return
    session.execute(
        update(User)
        .where(User.id == user_id, User.factor_enrolled_at.is_(None))
        .values(factor_enrolled_at=rt.now())
        .execution_options(synchronize_session=False)
    )
    revoke_user_sessions(session, rt, user_id=user_id, scope=ENROLL_SCOPE)
