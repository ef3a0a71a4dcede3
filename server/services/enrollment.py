"""Self-service enrollment of TOTP/HOTP tokens: a pending token with a QR code, activated by a first code."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.errors import Conflict, EnrollmentExpired, InvalidOtp, ReplayedOtp
from server.models import Token, User, new_id
from server.services import otp
from server.services.account_state import factor_activated
from server.services.audit import Actor, record_event, record_failure
from server.services.runtime import Runtime
from server.services.token_secrets import seal_secret, token_secret
from server.services.tokens import is_pending_expired
from server.token_kinds import TokenState, TokenType

# A user with this many tokens must remove one before adding another (bounds table growth per account).
MAX_TOKENS_PER_USER = 20


@dataclass(frozen=True)
class OtpEnrollment:
    token: Token
    secret: str  # base32, shown once for manual entry
    otpauth_uri: str
    expires_in: int


def otpauth_uri(rt: Runtime, *, token: Token, username: str, key: bytes) -> str:
    return otp.provisioning_uri(
        token_type=token.type,
        key=key,
        issuer=rt.settings.otp_issuer,
        username=username,
        algorithm=token.algorithm or "SHA1",
        digits=token.digits or 6,
        period=token.period or 30,
        counter=token.counter,
    )


def count_tokens(session: Session, *, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Token).where(Token.user_id == user.id)) or 0


def begin_otp_enrollment(
    session: Session,
    rt: Runtime,
    *,
    user: User,
    token_type: str,
    algorithm: str,
    digits: int,
    period: int,
    description: str,
    actor: Actor,
) -> OtpEnrollment:
    otp.validate_options(token_type=token_type, algorithm=algorithm, digits=digits, period=period)
    if count_tokens(session, user=user) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"At most {MAX_TOKENS_PER_USER} tokens per user; remove one first")
    key = otp.new_secret()
    token = Token(
        id=new_id(),
        user_id=user.id,
        type=token_type,
        state=TokenState.PENDING,
        description=description,
        algorithm=algorithm,
        digits=digits,
        period=period if token_type == TokenType.TOTP else None,
        counter=0,
        drift_steps=0,
        fail_count=0,
        sign_count=0,
        discoverable=False,
        created_at=rt.now(),
    )
    seal_secret(rt, token, key)
    session.add(token)
    record_event(
        session,
        actor=actor,
        action="token.enroll",
        result="success",
        now=rt.now(),
        target=f"token:{token.id}",
    )
    session.commit()
    uri = otpauth_uri(rt, token=token, username=user.username, key=key)
    return OtpEnrollment(token, otp.base32_secret(key), uri, rt.settings.pending_ttl)


def pending_otpauth_uri(rt: Runtime, *, token: Token, user: User) -> str:
    """The URI of a still-pending token (for its QR image); never shown once active or expired."""
    if (
        token.state != TokenState.PENDING
        or token.type not in (TokenType.TOTP, TokenType.HOTP)
        or is_pending_expired(rt, token)
    ):
        raise Conflict("The QR code is only shown while the token is pending")
    return otpauth_uri(rt, token=token, username=user.username, key=token_secret(rt, token))


def check_pending(session: Session, rt: Runtime, *, token: Token) -> None:
    """Refuses activation of an active or expired token; an expired one is removed."""
    if token.state != TokenState.PENDING:
        raise Conflict("The token is already active")
    if is_pending_expired(rt, token):
        session.delete(token)
        session.commit()
        raise EnrollmentExpired()


def activate_otp(session: Session, rt: Runtime, *, token: Token, code: str, actor: Actor) -> Token:
    """Proves the phone holds the secret: the first code is checked (and consumed) like any later one."""
    check_pending(session, rt, token=token)
    try:
        otp.check_code(session, rt, token=token, key=token_secret(rt, token), code=code)
    except (InvalidOtp, ReplayedOtp) as err:
        session.rollback()
        record_failure(
            session,
            actor=actor,
            action="token.activate",
            now=rt.now(),
            target=f"token:{token.id}",
            reason=err.code,
        )
        raise
    session.refresh(token)
    token.state = TokenState.ACTIVE
    token.activated_at = rt.now()
    factor_activated(session, rt, user_id=token.user_id)
    record_event(
        session,
        actor=actor,
        action="token.activate",
        result="success",
        now=rt.now(),
        target=f"token:{token.id}",
    )
    session.commit()
    return token
