"""Users: creation, lookup, password check, disable, delete."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from server.db import rows_changed
from server.directories import DirectoryUser
from server.errors import (
    Conflict,
    DirectoryUnavailable,
    InvalidClient,
    InvalidCredentials,
    NotFound,
    ValidationFailed,
)
from server.models import Client, RecoveryCode, SessionFamily, TemporaryCode, Token, User
from server.services.audit import Actor, record_event, record_failure
from server.services.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    password_matches,
)
from server.services.runtime import Runtime
from server.services.sessions import end_user_access
from server.services.tokens import ACTIVE_TOKEN_ORDER
from server.token_kinds import TokenState

log = logging.getLogger(__name__)

# Letters, digits and . _ @ + - : safe in an otpauth label, a URL and a log line.
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
ROLES = ("user", "admin")


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.match(username):
        raise ValidationFailed("username: 1-64 letters, digits or . _ @ + -, starting with a letter or digit")
    return username


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed(f"password: {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


def create_user(
    session: Session, rt: Runtime, *, username: str, password: str | None, role: str = "user", actor: Actor
) -> User:
    check_username(username)
    if role not in ROLES:
        raise ValidationFailed("role must be user or admin")
    if password is not None:
        check_password_policy(password)
    user = User(
        username=username,
        password_hash=hash_password(password) if password is not None else None,
        role=role,
        disabled=False,
        created_at=rt.now(),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as err:
        session.rollback()
        raise Conflict("A user with this name exists") from err
    record_event(session, actor=actor, action="user.create", result="success", now=rt.now(), target=username)
    session.commit()
    return user


def find_user(session: Session, *, username: str) -> User | None:
    if not USERNAME_PATTERN.match(username):
        return None
    return session.scalar(select(User).where(User.username == username))


@cache
def _user_and_active_tokens(types: tuple[str, ...]) -> Select[User, Token | None]:
    """Built once per token-type set: the user by name, outer-joined to their active tokens of those types, in
    the order `tokens.active_tokens` gives."""
    return (
        select(User, Token)
        .outerjoin(
            Token,
            # `=` per type rather than IN: an IN list is expanded into the SQL at every execution.
            and_(
                Token.user_id == User.id,
                Token.state == TokenState.ACTIVE,
                or_(*(Token.type == t for t in types)),
            ),
        )
        .where(User.username == bindparam("username"))
        .order_by(*ACTIVE_TOKEN_ORDER)
    )


def find_user_with_tokens(
    session: Session, *, username: str, types: tuple[str, ...]
) -> tuple[User | None, list[Token]]:
    """`find_user`, then `tokens.active_tokens(types=…)` of that user, in one round trip (one-step verify)."""
    if not USERNAME_PATTERN.match(username):
        return None, []
    rows = session.execute(_user_and_active_tokens(types), {"username": username}).all()
    if not rows:
        return None, []
    return rows[0][0], [token for _user, token in rows if token is not None]


def get_user(session: Session, *, username: str) -> User:
    user = find_user(session, username=username)
    if user is None:
        raise NotFound("No such user")
    return user


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    total: int


def list_users(session: Session, *, limit: int = 100, offset: int = 0) -> UserPage:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.username).limit(limit).offset(offset))
    return UserPage(users=list(rows), total=total)


def username_of(session: Session, *, user_id: int | None) -> str | None:
    return None if user_id is None else session.scalar(select(User.username).where(User.id == user_id))


def authenticate_password(
    session: Session, rt: Runtime, *, username: str, password: str, actor: Actor
) -> User:
    """The same error and the same cost for an unknown user, a disabled one and a wrong password, local or
    from the directory. A local row is checked here (Argon2id); any other name by the directory, when one is
    configured, binding as the user. A directory that does not answer is `DirectoryUnavailable` (503): no
    fall-back to anything else, and nothing counted against the user."""
    password = password[:MAX_PASSWORD_LENGTH]
    known = find_user(session, username=username)
    # The check (Argon2id, or a bind to the directory) runs with no transaction open: on SQLite an open one
    # holds the node's write lock, which every other sign-in would wait for meanwhile. Nothing was written
    # yet; the row, detached, keeps what was read, and is read again afterwards.
    if known is not None:
        session.expunge(known)
    session.rollback()
    directory = rt.directories.for_user(known)
    if directory is not rt.directories.local:
        # A local check's Argon2 cost too: timing does not tell a break-glass account from a directory one.
        password_matches(None, password)
    try:
        found = directory.check_password(username=username, password=password, known=known)
    except DirectoryUnavailable:
        _refuse(
            session, rt, actor=actor, target=known.username if known else "", reason=DirectoryUnavailable.code
        )
        raise
    user, reason = _read_again(session, known), InvalidCredentials.code
    if found is not None and directory is not rt.directories.local:
        user = admit_directory_user(session, rt, found=found, actor=actor) if found.may_sign_in else None
        reason = "directory_refused"  # if refused below: disabled there, outside the login group, or unusable
    if found is None or user is None or user.disabled or not found.may_sign_in:
        target = user.username if user else (known.username if known else "")
        _refuse(session, rt, actor=actor, target=target, reason=reason if found else InvalidCredentials.code)
        raise InvalidCredentials()
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _read_again(session: Session, checked: User | None) -> User | None:
    """The row whose password was checked, as it is now: None if it went, or if its password changed (or
    its name moved to another row) while the check ran."""
    if checked is None:
        return None
    user = session.get(User, checked.id)
    if user is None or user.password_hash != checked.password_hash or user.username != checked.username:
        return None
    return user


def _refuse(session: Session, rt: Runtime, *, actor: Actor, target: str, reason: str) -> None:
    record_failure(
        session,
        actor=actor,
        action="login.password",
        now=rt.now(),
        target=target,
        reason=reason,
    )


def admit_directory_user(session: Session, rt: Runtime, *, found: DirectoryUser, actor: Actor) -> User | None:
    """The row of a directory person, created at their first sign-in (or sync) or brought up to date (name,
    display name, e-mail, role), keyed by the directory's stable id so a rename keeps their tokens. None when
    their name cannot be a Tokenward username or belongs to a local user. Flushed, not committed."""
    if not USERNAME_PATTERN.match(found.username):
        log.warning("directory user %s not admitted: not a usable Tokenward username", found.external_id)
        return None
    try:
        with session.begin_nested():  # a lost race undoes this person only, not a sync's other work
            user = _apply_directory_user(session, rt, found=found, actor=actor)
    except IntegrityError:
        # The same person's first sign-in on another node won the race: theirs is the row.
        return _by_external_id(session, found)
    return user


def _apply_directory_user(
    session: Session, rt: Runtime, *, found: DirectoryUser, actor: Actor
) -> User | None:
    user = _by_external_id(session, found)
    holder = session.scalar(select(User).where(User.username == found.username))
    if holder is not None and holder is not user:
        if holder.source != found.source:
            log.warning("directory user %s not admitted: a local user has that name", found.username)
            return None
        # Someone renamed away in the directory still holds the name: parked until they sign in or a sync
        # gives them their new one.
        holder.username = f"renamed-{holder.uid}"
        session.flush()
    changed = user is None or _differs(user, found)
    action = "user.create" if user is None else "user.update"
    if user is None:
        user = User(source=found.source, external_id=found.external_id, password_hash=None, role="user")
        user.disabled, user.created_at = False, rt.now()
        session.add(user)
    if found.admin is not None:
        user.role = "admin" if found.admin else "user"
    user.username, user.display_name, user.email = found.username, found.display_name, found.email
    session.flush()
    if changed:
        record_event(
            session, actor=actor, action=action, result="success", now=rt.now(), target=user.username
        )
    return user


def _by_external_id(session: Session, found: DirectoryUser) -> User | None:
    return session.scalar(
        select(User).where(User.source == found.source, User.external_id == found.external_id)
    )


def _differs(user: User, found: DirectoryUser) -> bool:
    role = user.role if found.admin is None else ("admin" if found.admin else "user")
    ours = (user.username, user.display_name or "", user.email or "", user.role)
    return ours != (found.username, found.display_name, found.email, role)


def _lock_enabled_administrators(session: Session, *, user: User) -> None:
    """PostgreSQL: locks the enabled administrators' rows (in id order, so two callers cannot deadlock) before
    `_still_an_administrator` counts them. Two admins disabling each other then take turns; without the lock
    each statement's snapshot would still see the other enabled (write skew). SQLite needs nothing: every
    transaction there holds the write lock from its start (server.db.tune_sqlite)."""
    if user.role == "admin" and not user.disabled:
        session.execute(
            select(User.id)
            .where(User.role == "admin", User.disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        )


def _lock_rows_sign_ins_lock(session: Session, *, user_id: int) -> None:
    """PostgreSQL: the user's rows that a sign-in or a refresh locks before it share-locks the user (a guess
    counted on a token, a code spent, a session family rotated), locked before the user's own row: the
    delete then waits for such a sign-in instead of deadlocking with it in its cascade."""
    for model in (Token, RecoveryCode, TemporaryCode, SessionFamily):
        session.execute(select(model.id).where(model.user_id == user_id).order_by(model.id).with_for_update())


def _still_an_administrator(user_id: int) -> ColumnElement[bool]:
    """True for a row whose removal leaves an enabled administrator: it is not one, or another one exists."""
    other = aliased(User)
    another_admin = (
        select(other.id).where(other.role == "admin", other.disabled.is_(False), other.id != user_id).exists()
    )
    return or_(User.role != "admin", User.disabled.is_(True), another_admin)


LAST_ADMINISTRATOR = "This is the last enabled administrator; make another one first"


def set_disabled(session: Session, rt: Runtime, *, username: str, disabled: bool, actor: Actor) -> User:
    """Disabling is one conditional UPDATE whose row count decides (the last enabled administrator stays)."""
    user = get_user(session, username=username)
    if disabled:
        _lock_enabled_administrators(session, user=user)
        changed = rows_changed(
            session.execute(
                update(User)
                .where(User.id == user.id, _still_an_administrator(user.id))
                .values(disabled=True)
                .execution_options(synchronize_session=False)
            )
        )
        if changed != 1:
            session.rollback()
            raise Conflict(LAST_ADMINISTRATOR)
        session.expire(user, ["disabled"])
        end_user_access(session, rt, user_id=user.id)
    else:
        user.disabled = False
    action = "user.disable" if disabled else "user.enable"
    record_event(session, actor=actor, action=action, result="success", now=rt.now(), target=username)
    session.commit()
    return user


# Share-locked until the sign-in commits (PostgreSQL; SQLite's writers take turns anyway): a disable, which
# updates the user's row before it ends their sessions, or a client's removal waits for the sign-in, then
# ends or refuses the session it made. Rows read earlier in the request may have changed since.
_STILL_ENABLED = (
    select(User.id)
    .where(User.id == bindparam("user_id"), User.disabled.is_(False))
    .with_for_update(read=True)
)
_STILL_ENABLED_WITH_CLIENT = (
    select(User.id)
    .join(Client, Client.id == bindparam("client_id"))
    .where(User.id == bindparam("user_id"), User.disabled.is_(False))
    .with_for_update(read=True)
)


def confirm_sign_in(session: Session, *, user: User, client: Client | None) -> None:
    """The user is still enabled and the client still registered, and stay so until this sign-in commits;
    InvalidCredentials (audited as `user_disabled`) or InvalidClient otherwise."""
    if client is None:
        found = session.scalar(_STILL_ENABLED, {"user_id": user.id})
    else:
        found = session.scalar(_STILL_ENABLED_WITH_CLIENT, {"user_id": user.id, "client_id": client.id})
    if found is not None:
        return
    if client is not None and session.scalar(select(Client.id).where(Client.id == client.id)) is None:
        raise InvalidClient()
    refused = InvalidCredentials()
    refused.audit_reason = "user_disabled"
    raise refused


def delete_user(session: Session, rt: Runtime, *, username: str, actor: Actor) -> None:
    """One conditional DELETE whose row count decides, as for disabling (tokens go with it: ON DELETE
    CASCADE)."""
    user = get_user(session, username=username)
    _lock_enabled_administrators(session, user=user)
    _lock_rows_sign_ins_lock(session, user_id=user.id)
    deleted = rows_changed(
        session.execute(
            delete(User)
            .where(User.id == user.id, _still_an_administrator(user.id))
            .execution_options(synchronize_session=False)
        )
    )
    if deleted != 1:
        session.rollback()
        raise Conflict(LAST_ADMINISTRATOR)
    session.expunge(user)
    record_event(session, actor=actor, action="user.delete", result="success", now=rt.now(), target=username)
    session.commit()


def user_view(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "id": user.uid,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "source": user.source,
    }
