"""Changing a local user's password: by the user (who proves the current one, in a recent two-factor
session) or by an administrator (a reset). A directory user's password lives in the directory: refused."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.errors import InvalidCredentials, PasswordInDirectory
from server.models import User
from server.services.audit import Actor, record_event, record_failure
from server.services.passwords import MAX_PASSWORD_LENGTH, hash_password, password_matches
from server.services.runtime import Runtime
from server.services.sessions import end_user_access
from server.services.users import check_password_policy, get_user

LOCAL_SOURCE = "local"


def _local_only(user: User) -> None:
    if user.source != LOCAL_SOURCE:
        raise PasswordInDirectory()


def change_own_password(
    session: Session,
    rt: Runtime,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_family_id: str,
    actor: Actor,
) -> None:
    """The user's own change. The current password must match (a user without one gives an empty string);
    the user's other sessions and sign-ins under way end, the session that asked (`keep_family_id`) stays."""
    _local_only(user)
    check_password_policy(new_password)
    current_password = current_password[:MAX_PASSWORD_LENGTH]
    if user.password_hash is None:
        proved = current_password == ""
    else:
        proved = password_matches(user.password_hash, current_password)
    if not proved:
        record_failure(
            session,
            actor=actor,
            action="user.password.change",
            now=rt.now(),
            target=user.username,
            reason=InvalidCredentials.code,
        )
        raise InvalidCredentials("The current password is not right")
    user.password_hash = hash_password(new_password)
    end_user_access(session, rt, user_id=user.id, keep_family_id=keep_family_id)
    record_event(
        session,
        actor=actor,
        action="user.password.change",
        result="success",
        now=rt.now(),
        target=user.username,
    )
    session.commit()


def reset_password(session: Session, rt: Runtime, *, username: str, new_password: str, actor: Actor) -> User:
    """An administrator's reset: the new password replaces the old one; every session of the user, and every
    sign-in under way, ends."""
    user = get_user(session, username=username)
    _local_only(user)
    check_password_policy(new_password)
    user.password_hash = hash_password(new_password)
    end_user_access(session, rt, user_id=user.id)
    record_event(
        session, actor=actor, action="user.password.reset", result="success", now=rt.now(), target=username
    )
    session.commit()
    return user
