"""Audit events: who did what to what, and whether it worked. Never a secret, code, password or token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from server.db import Executor
from server.models import AuditEvent
from server.services.actors import Actor as Actor  # re-exported: the services name actors from here

# A Core INSERT, built once: an audit row is written on every attempt and is never read back in the request,
# so the ORM's unit of work (object state, flush ordering, identity map) is pure overhead here.
_INSERT_EVENT = insert(cast(Table, AuditEvent.__table__))


def record_event(
    session: Executor,
    *,
    actor: Actor,
    action: str,
    result: str,
    now: float,
    target: str = "",
    reason: str = "",
    actor_name: str | None = None,
) -> None:
    """Writes an event in the session's transaction; the caller's commit makes it durable together with what
    it describes (and a rollback discards both)."""
    session.execute(
        _INSERT_EVENT,
        {
            "at": now,
            "actor": (actor_name or actor.name)[:64],
            "action": action,
            "target": target[:128],
            "result": result,
            "reason": reason[:64],
            "client_ip": actor.client_ip[:64],
            "request_id": actor.request_id[:32],
        },
    )


def record_failure(
    session: Session,
    *,
    actor: Actor,
    action: str,
    now: float,
    target: str = "",
    reason: str = "",
) -> None:
    """Audits a refused attempt and commits it at once: the caller raises next, and the request's rollback
    must not take the audit row with it."""
    record_event(session, actor=actor, action=action, result="failure", now=now, target=target, reason=reason)
    session.commit()


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    total: int


def list_events(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    result: str | None = None,
    target: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> AuditPage:
    query = select(AuditEvent)
    for column, value in (
        (AuditEvent.actor, actor),
        (AuditEvent.action, action),
        (AuditEvent.result, result),
        (AuditEvent.target, target),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return AuditPage(events=list(rows), total=total)


def event_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "result": event.result,
        "reason": event.reason,
        "client_ip": event.client_ip,
        "request_id": event.request_id,
    }
