"""`tokenward user sync`: the directory's people as Tokenward users, ahead of their first sign-in.

Everyone the user filter matches is admitted or brought up to date (renames included: rows are keyed by the
directory's stable id). Rows of people who left the directory, or who are disabled there or outside the login
group, are disabled and their sessions ended. A sync never re-enables a row: that is an administrator's
`tokenward user enable`, as it is for a row disabled by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.directories import ExternalDirectory
from server.errors import Conflict
from server.models import User
from server.services.audit import Actor, record_event
from server.services.runtime import Runtime
from server.services.sessions import end_user_access
from server.services.users import admit_directory_user


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names Tokenward cannot use, or held by local users


def sync_directory_users(
    session: Session, rt: Runtime, *, directory: ExternalDirectory, actor: Actor
) -> SyncReport:
    """One transaction: the directory is listed first (a 503 leaves everything as it was)."""
    people = directory.list_users()
    rows = {
        user.external_id: user
        for user in session.scalars(select(User).where(User.source == directory.source))
    }
    if not people and rows:
        # An empty answer is far likelier a wrong base or filter than everyone leaving at once.
        raise Conflict("The directory listed nobody; refusing to disable every directory user")
    report = SyncReport()
    seen: set[str] = set()
    for person in people:
        seen.add(person.external_id)
        row = rows.get(person.external_id)
        if row is None and not person.may_sign_in:
            continue  # nobody to disable, nobody to create
        before = None if row is None else (row.username, row.display_name, row.email, row.role)
        user = admit_directory_user(session, rt, found=person, actor=actor)
        if user is None:
            report.skipped.append(person.username)
            continue
        if before is None:
            report.created.append(user.username)
        elif before != (user.username, user.display_name, user.email, user.role):
            report.updated.append(user.username)
        if not person.may_sign_in and _disable(session, rt, user=user, actor=actor):
            report.disabled.append(user.username)
    for external_id, row in rows.items():
        if external_id not in seen and _disable(session, rt, user=row, actor=actor):
            report.disabled.append(row.username)
    record_event(
        session, actor=actor, action="user.sync", result="success", now=rt.now(), target=directory.source
    )
    session.commit()
    return report


def _disable(session: Session, rt: Runtime, *, user: User, actor: Actor) -> bool:
    if user.disabled:
        return False
    user.disabled = True
    end_user_access(session, rt, user_id=user.id)
    record_event(
        session,
        actor=actor,
        action="user.disable",
        result="success",
        now=rt.now(),
        target=user.username,
        reason="directory",
    )
    return True
