"""Refusals by a rate limit, audited in aggregate: one `ratelimit.refused` event per limit key and window,
whose target carries the number refused so far, instead of one event per refused request (a flood would
otherwise write the audit log as fast as it is refused)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.models import AuditEvent
from server.services.audit import Actor, record_failure
from server.services.users import find_user

ACTION = "ratelimit.refused"
REASON = "rate_limited"
_EVENTS = cast(Table, AuditEvent.__table__)


def refusal_subject(session: Session, *, scope: str, username: str | None, client_ip: str) -> str:
    """What was limited, for the audit target: the client IP, or the user (by name only when it exists, so
    a password typed into the username field is never written down) and the IP the requests came from."""
    if scope != "user":
        return f"ip {client_ip}"
    known = username is not None and find_user(session, username=username) is not None
    return f"user {username if known else '(unknown)'} from {client_ip}"


def record_refusal(
    session: Session, *, subject: str, refused: int, window_seconds: int, actor: Actor, now: float
) -> None:
    """`refused` is the count of this subject's refusals in the current window (kept by the rate-limit
    storage): the first writes the event, later ones update the count of the event written within the
    window. Commits."""
    target = f"{subject}: {refused} refused"
    if refused > 1:
        latest = (
            select(func.max(_EVENTS.c.id))
            .where(
                _EVENTS.c.action == ACTION,
                _EVENTS.c.at >= now - window_seconds,
                _EVENTS.c.target.startswith(f"{subject}: ", autoescape=True),
            )
            .scalar_subquery()
        )
        updated = session.execute(update(_EVENTS).where(_EVENTS.c.id == latest).values(target=target[:128]))
        if rows_changed(updated) == 1:
            session.commit()
            return
    record_failure(session, actor=actor, action=ACTION, now=now, target=target, reason=REASON)
