"""Tables. Times are UNIX seconds (float) from the injected clock; secrets are stored encrypted only."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import db
from server.token_kinds import TokenState


def new_id() -> str:
    return uuid.uuid4().hex


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(
        String(32), unique=True, default=new_id
    )  # JWT `sub`, WebAuthn user handle
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    # When a second factor first became active. Set: a password alone never opens an enroll session again.
    factor_enrolled_at: Mapped[float | None] = mapped_column(Float)
    # Where the person and their password live: `local` (this database) or `ldap` (a directory, which
    # checks the password). A directory's people are keyed by its stable id, so a rename keeps their tokens.
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    external_id: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("source", "external_id"),)


class Token(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # AES-GCM associated data
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16))  # a TokenType's text
    state: Mapped[str] = mapped_column(String(16), default=TokenState.PENDING.value)  # a TokenState's text
    description: Mapped[str] = mapped_column(String(128), default="")
    serial: Mapped[str | None] = mapped_column(String(64), unique=True)  # fob / imported token serial
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    algorithm: Mapped[str | None] = mapped_column(String(16))
    digits: Mapped[int | None] = mapped_column(Integer)
    period: Mapped[int | None] = mapped_column(Integer)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)  # HOTP / OCRA counter: next value expected
    last_time_step: Mapped[int | None] = mapped_column(BigInteger)  # last accepted TOTP / OCRA time step
    drift_steps: Mapped[int] = mapped_column(Integer, default=0)  # clock drift found by resync
    fail_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Float)  # a lock releases itself then
    lock_count: Mapped[int] = mapped_column(Integer, default=0)  # consecutive locks: each doubles the time
    ocra_suite: Mapped[str | None] = mapped_column(String(64))
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    credential_data: Mapped[bytes | None] = mapped_column(LargeBinary)  # AttestedCredentialData
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    aaguid: Mapped[str | None] = mapped_column(String(36))
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False)
    enrollment_state: Mapped[str | None] = mapped_column(Text)  # WebAuthn registration ceremony, until used
    created_at: Mapped[float] = mapped_column(Float)
    activated_at: Mapped[float | None] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_tokens_user_state", "user_id", "state"),)


class LoginTransaction(db.Model):  # type: ignore[name-defined,misc]
    """A pending second-factor challenge; any node can complete it."""

    __tablename__ = "transactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    consumed_at: Mapped[float | None] = mapped_column(Float)
    fob_challenge: Mapped[str | None] = mapped_column(String(64))
    webauthn_state: Mapped[str | None] = mapped_column(Text)  # JSON ceremony state from Fido2Server
    # The registered client that opened it (verify {username}); only that client may answer it.
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # A decoy for a name without usable tokens (verify {username}): looks real, nothing completes it.
    decoy: Mapped[bool] = mapped_column(Boolean, default=False)
    # The name a decoy was started for: its answers count against that name's rate limit, as a real one's do.
    decoy_username: Mapped[str | None] = mapped_column(String(64))
    # A step-up: the session family the new session replaces.
    replaces_family: Mapped[str | None] = mapped_column(String(32))


class SessionFamily(db.Model):  # type: ignore[name-defined,misc]
    """One sign-in and every refresh of it. Its row is the one place a session is revoked: access tokens
    (claim `sid`) and refresh tokens are checked against it, and it outlives every token it issued."""

    __tablename__ = "session_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    amr: Mapped[str] = mapped_column(String(64))  # space separated
    acr: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    # A relying party's session (OpenID Connect): the scope it was granted; None for every other session.
    oidc_scope: Mapped[str | None] = mapped_column(String(255))
    auth_time: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # after every token of the family
    revoked_at: Mapped[float | None] = mapped_column(Float)


class RefreshToken(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the opaque token
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class Client(db.Model):  # type: ignore[name-defined,misc]
    """A registered caller that is not a person: an application's login form, later OIDC and RADIUS."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public client_id
    name: Mapped[str] = mapped_column(String(64), unique=True)
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary)
    secret_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256(salt, secret), hex
    audience: Mapped[str] = mapped_column(String(255))
    allowed_methods: Mapped[str] = mapped_column(String(64))  # space separated: otp fob webauthn
    redirect_uris: Mapped[str] = mapped_column(Text, default="")  # newline separated (OpenID Connect)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    required_acr: Mapped[str] = mapped_column(String(32), default="")
    # Run by the same operator as Tokenward: its users are not asked for consent (OpenID Connect).
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class OidcCode(db.Model):  # type: ignore[name-defined,misc]
    """An OpenID Connect authorization code: single use, short-lived, bound to client, redirect URI and PKCE
    challenge. It outlives its use (until its family could expire) so that a replay revokes what it issued."""

    __tablename__ = "oidc_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the code
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(255))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    amr: Mapped[str] = mapped_column(String(64))  # space separated, from the browser session
    acr: Mapped[str] = mapped_column(String(32))
    auth_time: Mapped[float] = mapped_column(Float)
    family_id: Mapped[str] = mapped_column(String(32))  # the session family its tokens belong to
    # The browser's session family it was issued from: the code dies with it (None: issued before 0007).
    source_family_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float)


class OidcConsent(db.Model):  # type: ignore[name-defined,misc]
    """A user's agreement that a (third-party) client may sign them in with the scope granted."""

    __tablename__ = "oidc_consents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[float] = mapped_column(Float)


class RadiusClient(db.Model):  # type: ignore[name-defined,misc]
    """What a RADIUS NAS adds to its registered client: where it speaks from and the shared secret. The
    `clients` row carries its name, allowed methods and required sign-in, as for every client."""

    __tablename__ = "radius_clients"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)  # a network, CIDR (one host: /32 or /128)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)  # sealed, associated data radius:<client_id>
    # The NAS checks the password itself: User-Password carries the one-time code alone.
    code_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # False only for a legacy NAS that cannot sign requests (pam_radius_auth < 2.0.1): its requests may then
    # carry no Proxy-State (BlastRADIUS, FreeRADIUS's limit_proxy_state); answers are signed all the same.
    require_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=True)


class RecoveryCode(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of an 80-bit random code
    created_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class TemporaryCode(db.Model):  # type: ignore[name-defined,misc]
    """An administrator's one-login code for a user who lost their token (or was invited to enroll)."""

    __tablename__ = "temporary_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class SigningKey(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    retired_at: Mapped[float | None] = mapped_column(Float)  # when a newer key took over signing


class AuditEvent(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    result: Mapped[str] = mapped_column(String(16))  # success | failure
    reason: Mapped[str] = mapped_column(String(64), default="")  # a stable error code, never input
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(32), default="")


class RateLimitCounter(db.Model):  # type: ignore[name-defined,misc]
    """A fixed-window counter of the `database://` rate-limit storage (server.services.ratelimit_storage)."""

    __tablename__ = "ratelimit_counters"

    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
