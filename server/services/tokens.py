"""Tokens as records: lookup, listing, and the admin actions (disable, unlock, resync, assign, delete)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import Token, User
from server.services import otp
from server.services.account_state import factor_activated
from server.services.audit import Actor, record_event, record_failure
from server.services.lockout import is_locked, unlock_token
from server.services.runtime import Runtime
from server.services.token_secrets import token_secret
from server.token_kinds import TokenState, TokenType

TOKEN_ID = re.compile(r"^[0-9a-f]{32}$")
OTP_TYPES = (TokenType.TOTP, TokenType.HOTP)


def get_token(session: Session, *, token_id: str, owner: User | None = None) -> Token:
    """The token, if it exists (and belongs to `owner` when given); a foreign token is simply not found."""
    token = session.get(Token, token_id) if TOKEN_ID.match(token_id) else None
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound("No such token")
    return token


def is_pending_expired(rt: Runtime, token: Token) -> bool:
    return token.state == TokenState.PENDING and rt.now() >= token.created_at + rt.settings.pending_ttl


def user_tokens(session: Session, rt: Runtime, *, user: User) -> list[Token]:
    """The user's tokens, without enrollments that expired unactivated."""
    rows = session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created_at))
    return [token for token in rows if not is_pending_expired(rt, token)]


# The order a factor tries a user's tokens in: the most recently used first, then the oldest.
ACTIVE_TOKEN_ORDER = (Token.last_used_at.desc().nulls_last(), Token.created_at)


def active_tokens(session: Session, *, user_id: int, types: tuple[str, ...] | None = None) -> list[Token]:
    query = select(Token).where(Token.user_id == user_id, Token.state == TokenState.ACTIVE)
    if types is not None:
        query = query.where(Token.type.in_(types))
    return list(session.scalars(query.order_by(*ACTIVE_TOKEN_ORDER)))


@dataclass(frozen=True)
class TokenFilter:
    username: str | None = None
    type: str | None = None
    state: str | None = None
    locked: bool | None = None
    unassigned: bool | None = None
    serial: str | None = None


@dataclass(frozen=True)
class TokenPage:
    tokens: list[tuple[Token, str | None]]  # (token, owner's username)
    total: int


def list_all_tokens(
    session: Session, rt: Runtime, *, filters: TokenFilter, limit: int, offset: int
) -> TokenPage:
    query = select(Token, User.username).outerjoin(User, Token.user_id == User.id)
    if filters.username is not None:
        query = query.where(User.username == filters.username)
    if filters.type is not None:
        query = query.where(Token.type == filters.type)
    if filters.state is not None:
        query = query.where(Token.state == filters.state)
    if filters.serial is not None:
        query = query.where(Token.serial == filters.serial)
    if filters.unassigned is not None:
        query = query.where(Token.user_id.is_(None) if filters.unassigned else Token.user_id.is_not(None))
    if filters.locked is not None:
        threshold, now = rt.settings.lockout_threshold, rt.now()
        locked = and_(
            Token.fail_count >= threshold, or_(Token.locked_until.is_(None), Token.locked_until > now)
        )
        query = query.where(locked if filters.locked else not_(locked))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Token.created_at, Token.id).limit(limit).offset(offset)).all()
    return TokenPage(tokens=[(row[0], row[1]) for row in rows], total=total)


def _audit(session: Session, rt: Runtime, actor: Actor, action: str, token: Token) -> None:
    record_event(
        session, actor=actor, action=action, result="success", now=rt.now(), target=f"token:{token.id}"
    )


def delete_token(session: Session, rt: Runtime, *, token: Token, actor: Actor) -> None:
    _audit(session, rt, actor, "token.delete", token)
    session.delete(token)
    session.commit()


def set_token_enabled(session: Session, rt: Runtime, *, token: Token, enabled: bool, actor: Actor) -> Token:
    if token.state == TokenState.PENDING:
        raise Conflict("A pending token is activated by its owner, not enabled")
    token.state = TokenState.ACTIVE if enabled else TokenState.DISABLED
    if enabled:
        factor_activated(session, rt, user_id=token.user_id)
    _audit(session, rt, actor, "token.enable" if enabled else "token.disable", token)
    session.commit()
    return token


def unlock(session: Session, rt: Runtime, *, token: Token, actor: Actor) -> Token:
    unlock_token(session, token_id=token.id)
    _audit(session, rt, actor, "token.unlock", token)
    session.commit()
    session.refresh(token)
    return token


def resync_token(
    session: Session, rt: Runtime, *, token: Token, first_code: str, second_code: str, actor: Actor
) -> Token:
    """Realigns an HOTP counter or a TOTP clock drift from two consecutive codes (see otp.resync)."""
    if token.type not in OTP_TYPES:
        raise ValidationFailed("Only TOTP and HOTP tokens can be resynchronised")
    try:
        otp.resync(
            rt, token=token, key=token_secret(rt, token), first_code=first_code, second_code=second_code
        )
    except Exception as err:
        session.rollback()
        record_failure(
            session,
            actor=actor,
            action="token.resync",
            now=rt.now(),
            target=f"token:{token.id}",
            reason=getattr(err, "code", "error"),
        )
        raise
    _audit(session, rt, actor, "token.resync", token)
    session.commit()
    return token


def assign_token(session: Session, rt: Runtime, *, token: Token, user: User, actor: Actor) -> Token:
    if token.user_id is not None:
        raise Conflict("The token already belongs to a user; delete or unassign it first")
    token.user_id = user.id
    if token.state == TokenState.ACTIVE:
        factor_activated(session, rt, user_id=user.id)
    _audit(session, rt, actor, "token.assign", token)
    session.commit()
    return token


def token_view(rt: Runtime, token: Token, *, owner: str | None = None, admin: bool = False) -> dict[str, Any]:
    """What a client may see of a token: never its secret."""
    view: dict[str, Any] = {
        "id": token.id,
        "type": token.type,
        "state": token.state,
        "description": token.description,
        "created_at": token.created_at,
        "activated_at": token.activated_at,
        "last_used_at": token.last_used_at,
        "locked": is_locked(token, threshold=rt.settings.lockout_threshold, now=rt.now()),
    }
    if view["locked"]:
        view["locked_until"] = token.locked_until
    if token.state == TokenState.PENDING:
        view["expires_at"] = token.created_at + rt.settings.pending_ttl
    if token.type in OTP_TYPES:
        view.update(algorithm=token.algorithm, digits=token.digits, period=token.period)
    if token.serial is not None:
        view["serial"] = token.serial
    if token.ocra_suite is not None:
        view["suite"] = token.ocra_suite
    if token.aaguid is not None:
        view["aaguid"] = token.aaguid
    if admin:
        view.update(
            user=owner, fail_count=token.fail_count, drift_steps=token.drift_steps, counter=token.counter
        )
    return view
