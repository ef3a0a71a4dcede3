"""Sessions: short ES256 access tokens, rotating refresh tokens with reuse detection, instant revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

import jwt
from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import InvalidToken, RefreshTokenInvalid, RefreshTokenReused
from server.models import RefreshToken, RevokedAccessToken, User
from server.services.audit import Actor, record_event
from server.services.keys import ALGORITHM
from server.services.runtime import Runtime

FULL_SCOPE = "session"
ENROLL_SCOPE = "enroll"
_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
# Core INSERT built once: a new refresh token is written by every sign-in and never read back in the request.
_INSERT_REFRESH_TOKEN = insert(cast(Table, RefreshToken.__table__))


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    expires_in: int
    refresh_token: str
    amr: list[str]
    scope: str

    def as_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "amr": self.amr,
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


def _hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def amr_for(methods: set[str]) -> list[str]:
    """RFC 8176 values, `mfa` last when more than one factor kind was used (or a factor proved two, as a
    security key with user verification does)."""
    factors = sorted(methods - {"mfa"})
    return [*factors, "mfa"] if len(factors) > 1 or "mfa" in methods else factors


def issue_session(
    session: Session,
    rt: Runtime,
    *,
    user: User,
    amr: list[str],
    scope: str = FULL_SCOPE,
    auth_time: float | None = None,
    family_id: str | None = None,
) -> IssuedSession:
    """Signs an access token and stores a new refresh token; commits."""
    now = rt.now()
    settings = rt.settings
    family_id = family_id or secrets.token_hex(16)
    auth_time = now if auth_time is None else auth_time
    refresh_token = secrets.token_urlsafe(32)
    session.execute(
        _INSERT_REFRESH_TOKEN,
        {
            "token_hash": _hash(refresh_token),
            "family_id": family_id,
            "user_id": user.id,
            "amr": " ".join(amr),
            "scope": scope,
            "auth_time": auth_time,
            "created_at": now,
            "expires_at": now + settings.refresh_ttl,
        },
    )
    key = rt.keys.signing_key(session, now=now)
    claims = {
        "iss": settings.public_url,
        "sub": user.uid,
        "preferred_username": user.username,
        "aud": settings.jwt_audience,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + settings.access_ttl,
        "jti": secrets.token_urlsafe(16),
        "amr": amr,
        "auth_time": int(auth_time),
        "scope": scope,
        "sid": family_id,
    }
    access_token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    session.commit()
    return IssuedSession(access_token, settings.access_ttl, refresh_token, amr, scope)


def authenticate_bearer(session: Session, rt: Runtime, *, access_token: str) -> Principal:
    """Verifies signature (ES256 only), iss, aud, exp, nbf; refuses revoked tokens and disabled users."""
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
            audience=rt.settings.jwt_audience,
            issuer=rt.settings.public_url,
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as err:
        raise InvalidToken() from err
    if not (claims["nbf"] <= now < claims["exp"]):
        raise InvalidToken("The access token is expired or not yet valid")
    revoked = session.scalar(
        select(RevokedAccessToken.jti).where(
            or_(RevokedAccessToken.jti == claims["jti"], RevokedAccessToken.family_id == claims.get("sid"))
        )
    )
    if revoked is not None:
        raise InvalidToken("The access token was revoked")
    user = session.scalar(select(User).where(User.uid == claims["sub"]))
    if user is None or user.disabled:
        raise InvalidToken()
    return Principal(user=user, claims=claims)


def refresh_session(session: Session, rt: Runtime, *, refresh_token: str, actor: Actor) -> IssuedSession:
    """Rotates: the token is spent by one conditional UPDATE; presenting a spent one revokes its family."""
    now = rt.now()
    token_hash = _hash(refresh_token)
    spent = rows_changed(
        session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
        )
    )
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    user = session.get(User, row.user_id) if row is not None else None
    if spent != 1 or row is None or user is None or user.disabled:
        reused = row is not None and row.used_at is not None and spent != 1
        if reused and row is not None:
            revoke_family(session, rt, family_id=row.family_id)
        target = user.username if user else ""
        reason = RefreshTokenReused.code if reused else RefreshTokenInvalid.code
        record_event(
            session,
            actor=actor,
            action="session.refresh",
            result="failure",
            now=now,
            target=target,
            reason=reason,
        )
        session.commit()
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
    return issue_session(
        session,
        rt,
        user=user,
        amr=row.amr.split(),
        scope=row.scope,
        auth_time=row.auth_time,
        family_id=row.family_id,
    )


def revoke_family(session: Session, rt: Runtime, *, family_id: str) -> None:
    """Every refresh token of the family stops working, and so does every access token issued in it."""
    now = rt.now()
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    marker = f"family:{family_id}"
    if session.get(RevokedAccessToken, marker) is None:
        session.add(
            RevokedAccessToken(jti=marker, family_id=family_id, expires_at=now + rt.settings.access_ttl)
        )


def revoke_user_sessions(session: Session, rt: Runtime, *, user: User) -> None:
    families = session.scalars(
        select(RefreshToken.family_id).where(
            RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
        )
    ).all()
    for family_id in set(families):
        revoke_family(session, rt, family_id=family_id)


def logout(
    session: Session, rt: Runtime, *, principal: Principal, refresh_token: str | None, actor: Actor
) -> None:
    now = rt.now()
    claims = principal.claims
    if session.get(RevokedAccessToken, claims["jti"]) is None:
        session.add(RevokedAccessToken(jti=claims["jti"], family_id=None, expires_at=float(claims["exp"])))
    if principal.family_id:
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
        now=now,
        target=principal.user.username,
    )
    session.commit()
