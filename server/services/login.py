"""Starting a sign-in: password → second-factor transaction (or a first enrollment), the password-less
challenge of a registered client, the passkey login and the step-up of a signed-in session.

Answers to a transaction are checked in `server.services.verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from server.errors import EnrollmentNeedsCode, NoUsableToken, TokenwardError
from server.models import Client, Token, User
from server.services import fob, otp, webauthn
from server.services.assurance import ENROLL_SCOPE, Acr
from server.services.audit import Actor, record_event, record_failure
from server.services.clients import allowed_methods
from server.services.factors import Factor
from server.services.recovery_codes import has_temporary_code, remaining_recovery_codes
from server.services.runtime import Runtime
from server.services.sessions import Earned, IssuedSession, Principal, issue_session
from server.services.tokens import active_tokens
from server.services.transactions import begin_transaction
from server.services.users import authenticate_password, confirm_sign_in, find_user_with_tokens

FACTORS: tuple[Factor, ...] = (otp.FACTOR, fob.FACTOR, webauthn.FACTOR)
ALL_TOKEN_TYPES = tuple(token_type for factor in FACTORS for token_type in factor.token_types)
# Answers that stand in for a lost factor; listed in `methods` under these names.
CODE_METHODS = ("recovery_code", "temporary_code")


@dataclass(frozen=True)
class SecondFactorChallenge:
    transaction_id: str
    expires_in: int
    methods: list[str]
    challenges: dict[str, dict[str, Any]]  # per method, what the client is shown (fob challenge, options)


def _code_methods(session: Session, rt: Runtime, *, user: User) -> list[str]:
    methods = []
    if remaining_recovery_codes(session, user_id=user.id):
        methods.append("recovery")
    if has_temporary_code(session, rt, user_id=user.id):
        methods.append("temporary_code")
    return methods


def login_with_password(
    session: Session,
    rt: Runtime,
    *,
    username: str,
    password: str,
    actor: Actor,
    client: Client | None = None,
) -> SecondFactorChallenge | IssuedSession:
    """A second-factor transaction; or, for a user who never had a factor (and first enrollment by password
    is allowed), an enroll-only session. A user who lost every factor needs a recovery or temporary code.
    A registered `client` (a RADIUS NAS) owns the transaction: only it may answer, with its methods."""
    user = authenticate_password(session, rt, username=username, password=password, actor=actor)
    tokens = active_tokens(session, user_id=user.id)
    codes = _code_methods(session, rt, user=user)
    first_enrollment = (
        not tokens and user.factor_enrolled_at is None and rt.settings.first_enrollment == "password"
    )
    refused = not tokens and not codes and not first_enrollment
    try:
        confirm_sign_in(session, user=user, client=client)  # and so until this commits (the hash ran outside)
    except TokenwardError as err:
        reason = err.audit_reason or err.code
        record_failure(
            session, actor=actor, action="login.password", now=rt.now(), target=user.username, reason=reason
        )
        raise
    record_event(
        session,
        actor=actor,
        action="login.password",
        result="failure" if refused else "success",
        now=rt.now(),
        target=user.username,
        actor_name=user.username,
        reason=EnrollmentNeedsCode.code if refused else "",
    )
    if refused:
        session.commit()
        raise EnrollmentNeedsCode()
    if first_enrollment and not codes:
        if client is not None:  # a NAS cannot hand an enroll session over: enroll on the pages first
            session.commit()
            raise NoUsableToken()
        earned = Earned(amr=["pwd"], acr=Acr.SINGLE_FACTOR, scope=ENROLL_SCOPE)
        return issue_session(session, rt, user=user, earned=earned)
    if client is not None:
        tokens = [token for token in tokens if _method_of(token) in allowed_methods(client)]
    return _open_transaction(
        session, rt, user=user, tokens=tokens, password_verified=True, extra=codes, client=client
    )


def _method_of(token: Token) -> str:
    return next(factor.method for factor in FACTORS if token.type in factor.token_types)


def start_challenge(
    session: Session, rt: Runtime, *, username: str, client: Client, actor: Actor
) -> SecondFactorChallenge:
    """`verify {username}` by a registered client: a transaction without a password. Every name gets the
    same answer (the client's methods, a fob challenge, WebAuthn options without credential ids) after the
    same queries; a name without usable tokens gets a decoy that no answer completes."""
    user, tokens = find_user_with_tokens(session, username=username, types=ALL_TOKEN_TYPES)
    usable = user is not None and not user.disabled and bool(tokens)
    record_event(
        session,
        actor=actor,
        action="login.challenge",
        result="success" if usable else "failure",
        now=rt.now(),
        target=user.username if user is not None else "",
        reason="" if usable else ("unknown_user" if user is None else "no_usable_token"),
    )
    transaction = begin_transaction(
        session,
        rt,
        user_id=user.id if usable and user is not None else None,
        password_verified=False,
        client_id=client.id,
        decoy_username=None if usable else username,
    )
    methods = list(allowed_methods(client))
    challenges: dict[str, dict[str, Any]] = {}
    if "fob" in methods:
        challenges["fob"] = fob.FACTOR.challenge_any(rt, transaction=transaction, tokens=tokens)
    if "webauthn" in methods:
        challenges["webauthn"] = webauthn.passkey_challenge(rt, transaction=transaction)
    session.commit()
    return SecondFactorChallenge(transaction.id, rt.settings.transaction_ttl, methods, challenges)


def start_passkey_login(session: Session, rt: Runtime, *, actor: Actor) -> SecondFactorChallenge:
    """Usernameless login: the browser offers the user's discoverable credentials; the key names the user."""
    transaction = begin_transaction(session, rt, user_id=None, password_verified=False)
    options = webauthn.passkey_challenge(rt, transaction=transaction)
    record_event(session, actor=actor, action="login.passkey", result="success", now=rt.now())
    session.commit()
    return SecondFactorChallenge(
        transaction.id, rt.settings.transaction_ttl, ["webauthn"], {"webauthn": options}
    )


def start_step_up(
    session: Session, rt: Runtime, *, principal: Principal, actor: Actor
) -> SecondFactorChallenge:
    """A transaction for the signed-in user to answer their second factor again; its session replaces this
    one (and carries a new auth_time). A password in the old session counts for the new one."""
    user = principal.user
    record_event(
        session, actor=actor, action="login.step_up", result="success", now=rt.now(), target=user.username
    )
    return _open_transaction(
        session,
        rt,
        user=user,
        tokens=active_tokens(session, user_id=user.id),
        password_verified="pwd" in principal.amr,
        replaces_family=principal.family_id,
    )


def _open_transaction(
    session: Session,
    rt: Runtime,
    *,
    user: User,
    tokens: list[Token],
    password_verified: bool,
    extra: list[str] | None = None,
    replaces_family: str | None = None,
    client: Client | None = None,
) -> SecondFactorChallenge:
    transaction = begin_transaction(
        session,
        rt,
        user_id=user.id,
        password_verified=password_verified,
        client_id=client.id if client is not None else None,
        replaces_family=replaces_family,
    )
    methods, challenges = [], {}
    for factor in FACTORS:
        factor_tokens = [token for token in tokens if token.type in factor.token_types]
        if factor_tokens:
            methods.append(factor.method)
            shown = factor.challenge(session, rt, transaction=transaction, tokens=factor_tokens)
            if shown is not None:
                challenges[factor.method] = shown
    session.commit()
    return SecondFactorChallenge(
        transaction.id, rt.settings.transaction_ttl, methods + (extra or []), challenges
    )
