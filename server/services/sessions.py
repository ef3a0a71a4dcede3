"""Sessions: short ES256 access tokens, rotating refresh tokens with reuse detection, instant revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import jwt
from sqlalchemy import ColumnElement, Table, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import (
    DirectoryUnavailable,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenInvalid,
    RefreshTokenReused,
)
from server.models import Client, RefreshToken, SessionFamily, User
from server.services import refresh_clients
from server.services.assurance import FULL_SCOPE
from server.services.audit import Actor, record_event, record_failure
from server.services.directory_standing import confirm_directory_standing
from server.services.keys import ALGORITHM
from server.services.runtime import Runtime
from server.services.transactions import end_sign_ins_under_way

if TYPE_CHECKING:
    from server.services.verify_rows import ClientRow, UserRow

_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid"]
# Core INSERTs built once: every sign-in writes a family and a refresh token, never read back in the request.
_INSERT_REFRESH_TOKEN = insert(cast(Table, RefreshToken.__table__))
_INSERT_FAMILY = insert(cast(Table, SessionFamily.__table__))


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    expires_in: int
    refresh_token: str
    amr: list[str]
    acr: str
    scope: str

    def as_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "amr": self.amr,
            "acr": self.acr,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class Principal:
    """The holder of a verified, unrevoked access token."""

    user: User
    claims: dict[str, Any]

    @property
    def scope(self) -> str:
        return str(self.claims.get("scope", ""))

    @property
    def family_id(self) -> str:
        return str(self.claims.get("sid", ""))

    @property
    def amr(self) -> list[str]:
        return [str(value) for value in self.claims.get("amr", [])]


@dataclass(frozen=True)
class Earned:
    """How a session was earned: what goes into its family row and every token it issues."""

    amr: list[str]
    acr: str
    scope: str = FULL_SCOPE
    auth_time: float | None = None  # None: now
    client: Client | ClientRow | None = None
    oidc_scope: str | None = None  # a relying party's session: the OpenID Connect scope granted


def _hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def issue_session(
    session: Session,
    rt: Runtime,
    *,
    user: User | UserRow,
    earned: Earned,
    family_id: str | None = None,
    new_family_id: str | None = None,
) -> IssuedSession:
    """Stores a new refresh token (and, for a new sign-in, its family: named `new_family_id` when the caller
    chose the id beforehand, as an OpenID Connect code does), commits, then signs the access token."""
    now = rt.now()
    settings = rt.settings
    auth_time = now if earned.auth_time is None else earned.auth_time
    # The INSERTs on the transaction's connection, after the flush the session would have made before them:
    # the ORM's execution path costs more Python than the statements themselves.
    session.flush()
    connection = session.connection()
    if family_id is None:
        family_id = new_family_id or secrets.token_hex(16)
        connection.execute(
            _INSERT_FAMILY,
            {
                "id": family_id,
                "user_id": user.id,
                "client_id": earned.client.id if earned.client else None,
                "amr": " ".join(earned.amr),
                "acr": earned.acr,
                "scope": earned.scope,
                "oidc_scope": earned.oidc_scope,
                "auth_time": auth_time,
                "created_at": now,
                "expires_at": now + settings.refresh_ttl + settings.access_ttl,
            },
        )
    refresh_token = secrets.token_urlsafe(32)
    connection.execute(
        _INSERT_REFRESH_TOKEN,
        {
            "token_hash": _hash(refresh_token),
            "family_id": family_id,
            "user_id": user.id,
            "created_at": now,
            "expires_at": now + settings.refresh_ttl,
        },
    )
    key = rt.keys.signing_key(session, now=now)
    claims = {
        "iss": settings.public_url,
        "sub": user.uid,
        "preferred_username": user.username,
        "aud": earned.client.audience if earned.client else settings.jwt_audience,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + settings.access_ttl,
        "jti": secrets.token_urlsafe(16),
        "amr": earned.amr,
        "acr": earned.acr,
        "auth_time": int(auth_time),
        "scope": earned.scope,
        "sid": family_id,
    }
    if earned.client is not None:
        claims["azp"] = earned.client.id
    session.commit()
    # Signed after the commit, so the signature is not made inside the transaction (on SQLite, the node's
    # write lock). Nothing is lost if signing failed here: the access token is stored nowhere, and the state
    # left is that of an answer lost on the network after a commit (the code spent, a refresh token and a
    # family nobody was given, the audit row saying the check succeeded, which it did); the caller gets a
    # 500 and signs in with their next code. The claims were read before the commit, which expires rows.
    access_token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return IssuedSession(
        access_token, settings.access_ttl, refresh_token, earned.amr, earned.acr, earned.scope
    )


# The signed-in user, if the family the token names is still live, with the family's client and that client's
# audience: one query per authenticated request.
_LIVE_SESSION = (
    select(User, SessionFamily.client_id, Client.audience)
    .join(SessionFamily, SessionFamily.user_id == User.id)
    .outerjoin(Client, Client.id == SessionFamily.client_id)
    .where(
        SessionFamily.id == bindparam("sid"),
        SessionFamily.revoked_at.is_(None),
        User.uid == bindparam("sub"),
        User.disabled.is_(False),
    )
)


def authenticate_bearer(session: Session, rt: Runtime, *, access_token: str) -> Principal:
    """Verifies signature (ES256 only), iss, aud, exp, nbf; refuses revoked tokens and disabled users.

    `aud` is Tokenward's own audience, or for a client's session (`azp`) that client's audience: a client's
    session may read `me` and log out (server.services.assurance keeps it from everything else)."""
    now = rt.now()
    try:
        header = jwt.get_unverified_header(access_token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise InvalidToken()
        public_key = rt.keys.public_key(session, kid, valid_since=now - rt.settings.access_ttl)
        if public_key is None:
            raise InvalidToken()
        # PyJWT reads the wall clock; ours may be injected, so exp/nbf are checked below against it.
        claims: dict[str, Any] = jwt.decode(
            access_token,
            public_key,
            algorithms=[ALGORITHM],
            issuer=rt.settings.public_url,
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_aud": False,  # checked below against the session's client
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as err:
        raise InvalidToken() from err
    times = (claims["nbf"], claims["exp"], claims.get("auth_time", 0))
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in times):
        raise InvalidToken()
    if not (claims["nbf"] <= now < claims["exp"]):
        raise InvalidToken("The access token is expired or not yet valid")
    live = session.execute(_LIVE_SESSION, {"sid": str(claims["sid"]), "sub": str(claims["sub"])}).first()
    if live is None:
        raise InvalidToken("The access token was revoked")
    user, client_id, client_audience = live
    expected_audience = client_audience if client_id is not None else rt.settings.jwt_audience
    if claims["aud"] != expected_audience or claims.get("azp") != client_id:
        raise InvalidToken()
    return Principal(user=user, claims=claims)


def refresh_session(
    session: Session,
    rt: Runtime,
    *,
    refresh_token: str,
    actor: Actor,
    client: Client | None = None,
    oidc: bool = False,
) -> IssuedSession:
    """Rotates: the token is spent by one conditional UPDATE; presenting a spent one revokes its family.
    `client`: the authenticated caller (`oidc`: at the token endpoint), which must be the one the session was
    issued to (server.services.refresh_clients); refused, the token stays unspent.

    The family row is updated first, by a statement that re-checks it is not revoked: a logout (an UPDATE of
    the same row) and a refresh are serialised by the database, and a token minted by a refresh that won the
    race still belongs to a family the logout then revokes."""
    now = rt.now()
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(refresh_token)))
    family = session.get(SessionFamily, row.family_id) if row is not None else None
    user = session.get(User, row.user_id) if row is not None else None
    refused = refresh_clients.refusal(family, client=client, oidc=oidc) if family is not None else None
    if refused is not None:
        username = user.username if user else ""
        session.rollback()
        record_event(
            session,
            actor=actor,
            action="session.refresh",
            result="failure",
            now=now,
            target=username,
            reason=refused.audit_reason or refused.code,
        )
        session.commit()
        raise refused
    looks_live = row is not None and row.used_at is None and row.expires_at > now
    if (
        looks_live
        and family is not None
        and family.revoked_at is None
        and user is not None
        and not user.disabled
    ):
        _confirm_standing(session, rt, user=user, family_id=family.id, actor=actor)
    reused = False
    live = family is not None and _extend_family(session, rt, family_id=family.id)
    if live and row is not None:
        spent = rows_changed(
            session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.expires_at > now
                )
                .values(used_at=now)
            )
        )
        # Not spent, yet neither expired nor of a revoked family: it was spent before.
        reused = spent != 1 and row.expires_at > now
        live = spent == 1
    if not live or family is None or user is None or user.disabled:
        session.rollback()
        if reused and family is not None:
            revoke_family(session, rt, family_id=family.id)
        record_failure(
            session,
            actor=actor,
            action="session.refresh",
            now=now,
            target=user.username if user else "",
            reason=RefreshTokenReused.code if reused else RefreshTokenInvalid.code,
        )
        raise RefreshTokenReused() if reused else RefreshTokenInvalid()
    record_event(
        session,
        actor=actor,
        action="session.refresh",
        result="success",
        now=now,
        target=user.username,
        actor_name=user.username,
    )
    earned = Earned(
        amr=family.amr.split(),
        acr=family.acr,
        scope=family.scope,
        auth_time=family.auth_time,
        client=session.get(Client, family.client_id) if family.client_id else None,
        oidc_scope=family.oidc_scope,
    )
    return issue_session(session, rt, user=user, earned=earned, family_id=family.id)


def _confirm_standing(session: Session, rt: Runtime, *, user: User, family_id: str, actor: Actor) -> None:
    """A directory user's refresh asks the directory (before anything is written: no lock is held over the
    round trip). Disabled or removed there: the session ends. Directory down: 503, the token stays unspent."""
    try:
        confirm_directory_standing(rt, user=user)
    except (InvalidCredentials, DirectoryUnavailable) as err:
        username = user.username
        session.rollback()
        if isinstance(err, InvalidCredentials):
            revoke_family(session, rt, family_id=family_id)
        record_failure(
            session,
            actor=actor,
            action="session.refresh",
            now=rt.now(),
            target=username,
            reason=err.audit_reason or err.code,
        )
        if isinstance(err, InvalidCredentials):
            raise RefreshTokenInvalid() from err
        raise


def _extend_family(session: Session, rt: Runtime, *, family_id: str) -> bool:
    """Pushes the family's end past the tokens about to be issued; False when it is revoked."""
    now, settings = rt.now(), rt.settings
    return (
        rows_changed(
            session.execute(
                update(SessionFamily)
                .where(SessionFamily.id == family_id, SessionFamily.revoked_at.is_(None))
                .values(expires_at=now + settings.refresh_ttl + settings.access_ttl)
            )
        )
        == 1
    )


def _standing(family_id: str, now: float) -> ColumnElement[bool]:
    """The family, unless revoked or expired."""
    return and_(
        SessionFamily.id == family_id, SessionFamily.revoked_at.is_(None), SessionFamily.expires_at > now
    )


def family_stands(session: Session, rt: Runtime, *, family_id: str) -> bool:
    """Whether the session family is neither revoked nor expired."""
    return session.scalar(select(SessionFamily.id).where(_standing(family_id, rt.now()))) is not None


def replace_family(session: Session, rt: Runtime, *, family_id: str) -> bool:
    """Ends the family a step-up replaces, if it still stands (not committed): False when a logout, a
    revocation or its expiry ended it first (the conditional UPDATE's row count decides)."""
    ended = session.execute(
        update(SessionFamily).where(_standing(family_id, rt.now())).values(revoked_at=rt.now())
    )
    return rows_changed(ended) == 1


def revoke_family(session: Session, rt: Runtime, *, family_id: str) -> None:
    """Every token of the family, access and refresh, stops working (not committed here)."""
    session.execute(
        update(SessionFamily)
        .where(SessionFamily.id == family_id, SessionFamily.revoked_at.is_(None))
        .values(revoked_at=rt.now())
    )


def end_user_access(
    session: Session, rt: Runtime, *, user_id: int, keep_family_id: str | None = None
) -> None:
    """Every session of the user (all but `keep_family_id`) and every sign-in under way ends (not committed):
    the user was disabled, or the password their sign-ins proved is no longer theirs."""
    end_sign_ins_under_way(session, rt, user_id=user_id)
    revoke_user_sessions(session, rt, user_id=user_id, keep_family_id=keep_family_id)


def revoke_user_sessions(
    session: Session,
    rt: Runtime,
    *,
    user_id: int,
    scope: str | None = None,
    keep_family_id: str | None = None,
) -> None:
    """Ends the user's sessions (only those of `scope` when given; all but `keep_family_id`); no commit."""
    query = update(SessionFamily).where(SessionFamily.user_id == user_id, SessionFamily.revoked_at.is_(None))
    if scope is not None:
        query = query.where(SessionFamily.scope == scope)
    if keep_family_id is not None:
        query = query.where(SessionFamily.id != keep_family_id)
    session.execute(query.values(revoked_at=rt.now()))


def logout(
    session: Session, rt: Runtime, *, principal: Principal, refresh_token: str | None, actor: Actor
) -> None:
    revoke_family(session, rt, family_id=principal.family_id)
    if refresh_token:
        row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(refresh_token)))
        if row is not None and row.user_id == principal.user.id:
            revoke_family(session, rt, family_id=row.family_id)
    record_event(
        session,
        actor=actor,
        action="session.logout",
        result="success",
        now=rt.now(),
        target=principal.user.username,
    )
    session.commit()
