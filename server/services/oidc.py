"""OpenID Connect provider storage and rules: authorization codes, consent, assurance, tokens for clients.

The protocol itself is Authlib's (server.oidc); this module is what Authlib leaves to the caller. Tokens a
relying party gets are Tokenward sessions (server.services.sessions) of that client: an ES256 access token
for the client's audience (`azp` its id) and a refresh token in a session family, rotated with reuse
detection as every refresh token is. The family's id is the ID token's `sid`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import InvalidGrant, InvalidToken
from server.models import Client, OidcCode, OidcConsent, RefreshToken, SessionFamily, User
from server.services.assurance import FULL_SCOPE, RANK, Acr, meets
from server.services.audit import Actor, record_event
from server.services.keys import ALGORITHM
from server.services.runtime import Runtime
from server.services.sessions import (
    Earned,
    IssuedSession,
    Principal,
    authenticate_bearer,
    issue_session,
    refresh_session,
    revoke_family,
)

# A code crosses one redirect and one back-channel request: a minute is plenty (RFC 6749 allows ten).
CODE_TTL_SECONDS = 60
ACR_VALUES_SUPPORTED = (Acr.SINGLE_FACTOR, Acr.MFA, Acr.PHISHING_RESISTANT)
SCOPES_SUPPORTED = ("openid", "profile")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class CodeGrant:
    """A redeemed authorization code: what the tokens it buys carry."""

    client_id: str
    user: User
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    amr: list[str]
    acr: str
    auth_time: int
    family_id: str


# --- assurance ------------------------------------------------------------------------------------------


def required_acr(client: Client, acr_values: str | None) -> str:
    """The level a request needs: the client's own (`--require`) or, when stronger, the weakest of the
    request's known `acr_values` (a list of acceptable values, any of which will do)."""
    requested = [Acr(value) for value in (acr_values or "").split() if value in ACR_VALUES_SUPPORTED]
    levels = [Acr(client.required_acr)] if client.required_acr else []
    if requested:
        levels.append(min(requested, key=lambda level: RANK[level]))
    return max(levels, key=lambda level: RANK[level]) if levels else Acr.SINGLE_FACTOR


def unmet_need(
    principal: Principal | None,
    *,
    client: Client,
    acr_values: str | None,
    max_age: int | None,
    authenticated_after: float | None,
    now: float,
) -> str | None:
    """Why the browser's session cannot answer this request: `login` (none, or not a full one), `acr`
    (too weak), `max_age` (too old, or older than a `prompt=login` asked for); None when it can."""
    if principal is None or principal.scope != FULL_SCOPE:
        return "login"
    acr = str(principal.claims.get("acr", Acr.SINGLE_FACTOR))
    if not meets(acr, Acr.MFA) or not meets(acr, required_acr(client, acr_values)):
        # A relying party never gets a single-factor sign-in: Tokenward is its second factor.
        return "acr"
    auth_time = int(principal.claims.get("auth_time", 0))
    if max_age is not None and now - auth_time > max_age:
        return "max_age"
    if authenticated_after is not None and auth_time < int(authenticated_after):
        return "max_age"
    return None


# --- codes ------------------------------------------------------------------------------------------------


def save_code(
    session: Session,
    rt: Runtime,
    *,
    code: str,
    client: Client,
    principal: Principal,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    actor: Actor,
) -> None:
    now = rt.now()
    session.add(
        OidcCode(
            code_hash=_hash(code),
            client_id=client.id,
            user_id=principal.user.id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            amr=" ".join(principal.amr),
            acr=str(principal.claims.get("acr", "")),
            auth_time=float(principal.claims.get("auth_time", now)),
            family_id=secrets.token_hex(16),
            source_family_id=principal.family_id,
            created_at=now,
            expires_at=now + CODE_TTL_SECONDS,
        )
    )
    _audit(session, rt, actor, "oidc.authorize", client, principal.user, by_client=False)
    session.commit()


def redeem_code(session: Session, rt: Runtime, *, code: str, client: Client, actor: Actor) -> CodeGrant:
    """Spends the code by one conditional UPDATE. A spent code presented again revokes the session family
    it issued (RFC 6749 section 4.1.2); any other failure is a plain InvalidGrant (committed).

    Success is not committed: the caller issues the tokens (issue_for_code) in the same transaction, so the
    code is spent together with the family it starts, and a replay racing the first redemption waits for
    that commit (its UPDATE meets the row lock, or SQLite's write lock), then finds the family to revoke."""
    now = rt.now()
    code_hash = _hash(code)
    spent = rows_changed(
        session.execute(
            update(OidcCode)
            .where(
                OidcCode.code_hash == code_hash,
                OidcCode.client_id == client.id,
                OidcCode.used_at.is_(None),
                OidcCode.expires_at > now,
            )
            .values(used_at=now)
        )
    )
    row = session.get(OidcCode, code_hash)
    # Share-locked until the tokens commit (PostgreSQL): a disable waits, then revokes the family they start.
    user = session.get(User, row.user_id, with_for_update={"read": True}) if row is not None else None
    if spent != 1 or row is None or user is None or user.disabled:
        reused = row is not None and row.client_id == client.id and row.used_at is not None and spent != 1
        if reused and row is not None:
            revoke_family(session, rt, family_id=row.family_id)
        reason = "code_reused" if reused else "user_disabled" if user and user.disabled else "invalid_grant"
        _audit(session, rt, actor, "oidc.code", client, user, reason=reason)
        session.commit()
        raise InvalidGrant("The authorization code was already used" if reused else None)
    if not _source_session_live(session, rt, row):
        _audit(session, rt, actor, "oidc.code", client, user, reason="session_ended")
        session.commit()  # the code stays spent
        raise InvalidGrant("The sign-in the authorization code was issued from has ended")
    return CodeGrant(
        client_id=row.client_id,
        user=user,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        nonce=row.nonce,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        amr=row.amr.split(),
        acr=row.acr,
        auth_time=int(row.auth_time),
        family_id=row.family_id,
    )


def _source_session_live(session: Session, rt: Runtime, row: OidcCode) -> bool:
    """Whether the browser session the code was issued from still stands: a logout, a password reset or
    change, a disabled user or a revocation ends the codes it issued with it."""
    if row.source_family_id is None:
        return False
    family = session.get(SessionFamily, row.source_family_id)
    return (
        family is not None
        and family.user_id == row.user_id
        and family.revoked_at is None
        and family.expires_at > rt.now()
    )


def code_nonce_seen(session: Session, *, client_id: str, nonce: str) -> bool:
    """Whether a live code of this client already carries this nonce (Authlib refuses the replay)."""
    found = session.scalar(
        select(OidcCode.code_hash).where(OidcCode.client_id == client_id, OidcCode.nonce == nonce).limit(1)
    )
    return found is not None


# --- tokens -----------------------------------------------------------------------------------------------


def issue_for_code(
    session: Session, rt: Runtime, *, grant: CodeGrant, client: Client, actor: Actor
) -> IssuedSession:
    earned = Earned(
        amr=grant.amr,
        acr=grant.acr,
        scope=FULL_SCOPE,
        auth_time=grant.auth_time,
        client=client,
        oidc_scope=grant.scope,
    )
    _audit(session, rt, actor, "oidc.token", client, grant.user)
    return issue_session(session, rt, user=grant.user, earned=earned, new_family_id=grant.family_id)


def granted_scope(session: Session, rt: Runtime, *, refresh_token: str, client: Client, actor: Actor) -> str:
    """The scope this client's relying-party session was granted: what a refresh may ask for at most (RFC
    6749 section 6). Any other token (another client's, a session not issued through OpenID Connect) is an
    InvalidGrant, audited, and stays unspent."""
    family = _family_of_refresh_token(session, refresh_token)
    if family is not None and family.client_id == client.id and family.oidc_scope is not None:
        return family.oidc_scope
    user = session.get(User, family.user_id) if family is not None else None
    _audit(session, rt, actor, "oidc.refresh", client, user, reason="not_this_clients_session")
    session.commit()
    raise InvalidGrant()


def refresh_for_client(
    session: Session, rt: Runtime, *, refresh_token: str, client: Client, actor: Actor
) -> IssuedSession:
    """Rotates a refresh token of a session issued to this client through OpenID Connect (refresh_session: a
    reused one revokes its family); another session's token is refused (audited) without being spent."""
    family = _family_of_refresh_token(session, refresh_token)
    if family is None:
        raise InvalidGrant()
    issued = refresh_session(session, rt, refresh_token=refresh_token, actor=actor, client=client, oidc=True)
    _audit(session, rt, actor, "oidc.refresh", client, session.get(User, family.user_id))
    session.commit()
    return issued


def _family_of_refresh_token(session: Session, refresh_token: str) -> SessionFamily | None:
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(refresh_token)))
    return session.get(SessionFamily, row.family_id) if row is not None else None


def token_family(session: Session, rt: Runtime, *, token: str, client: Client) -> str | None:
    """The session family of this client's refresh or access token (RFC 7009 revocation), or None."""
    family = _family_of_refresh_token(session, token)
    if family is not None:
        return family.id if family.client_id == client.id else None
    try:
        principal = authenticate_bearer(session, rt, access_token=token)
    except InvalidToken:
        return None
    return principal.family_id if principal.claims.get("azp") == client.id else None


def revoke_client_family(
    session: Session, rt: Runtime, *, family_id: str, client: Client, actor: Actor
) -> None:
    revoke_family(session, rt, family_id=family_id)
    family = session.get(SessionFamily, family_id)
    _audit(session, rt, actor, "oidc.revoke", client, session.get(User, family.user_id) if family else None)
    session.commit()


def relying_party_principal(session: Session, rt: Runtime, *, access_token: str) -> tuple[Principal, str]:
    """The holder of a relying party's access token (userinfo), and the OpenID Connect scope its session
    was granted. Another client's session (a login form's one-step verify) is refused: it was issued to an
    application that already knows who signed in, and may read its own `/api/v1/me` only."""
    principal = authenticate_bearer(session, rt, access_token=access_token)
    family = session.get(SessionFamily, principal.family_id) if principal.claims.get("azp") else None
    if family is None or family.oidc_scope is None or "openid" not in family.oidc_scope.split():
        raise InvalidToken()
    return principal, family.oidc_scope


def user_claims(user: User, scope: str) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": user.uid}
    if "profile" in scope.split():
        claims["preferred_username"] = user.username
    return claims


def id_token_hint_claims(session: Session, rt: Runtime, *, id_token: str) -> Mapping[str, Any] | None:
    """The claims of an ID token this provider signed (expired ones included: a hint at logout), or None."""
    try:
        kid = jwt.get_unverified_header(id_token).get("kid")
        key = rt.keys.public_key(session, str(kid), valid_since=0) if kid else None
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=[ALGORITHM],
            issuer=rt.settings.public_url,
            options={"verify_aud": False, "verify_exp": False, "require": ["aud", "sub", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    return claims


def end_session(
    session: Session, rt: Runtime, *, principal: Principal | None, hinted_family: str | None, actor: Actor
) -> None:
    """RP-initiated logout: the browser's Tokenward session and the relying party's session it names."""
    for family_id in {principal.family_id if principal else None, hinted_family} - {None}:
        assert family_id is not None
        revoke_family(session, rt, family_id=family_id)
    record_event(
        session,
        actor=actor,
        action="oidc.logout",
        result="success",
        now=rt.now(),
        target=principal.user.username if principal else "",
    )
    session.commit()


# --- consent ----------------------------------------------------------------------------------------------


def has_consent(session: Session, *, user: User, client: Client, scope: str) -> bool:
    """First-party clients need none; others once per user (again when they ask for more scope)."""
    if client.first_party:
        return True
    row = session.get(OidcConsent, (user.id, client.id))
    return row is not None and set(scope.split()) <= set(row.scope.split())


def grant_consent(
    session: Session, rt: Runtime, *, user: User, client: Client, scope: str, actor: Actor
) -> None:
    row = session.get(OidcConsent, (user.id, client.id))
    if row is None:
        session.add(OidcConsent(user_id=user.id, client_id=client.id, scope=scope, granted_at=rt.now()))
    else:
        row.scope = " ".join(sorted(set(row.scope.split()) | set(scope.split())))
        row.granted_at = rt.now()
    _audit(session, rt, actor, "oidc.consent", client, user, by_client=False)
    session.commit()


def find_client(session: Session, *, client_id: str) -> Client | None:
    """The registered client with this id (any string: a bad one finds nothing)."""
    return session.get(Client, client_id) if len(client_id) == 32 else None


def _audit(
    session: Session,
    rt: Runtime,
    actor: Actor,
    action: str,
    client: Client,
    user: User | None,
    *,
    reason: str = "",
    by_client: bool = True,
) -> None:
    """Target `username client=NAME`; the actor is the client (at the token endpoint) or the person."""
    record_event(
        session,
        actor=actor,
        action=action,
        result="failure" if reason else "success",
        now=rt.now(),
        target=f"{user.username if user else ''} client={client.name}"[:128],
        reason=reason,
        actor_name=client.name if by_client else None,
    )
