"""Login and verify: password → transaction → second factor → session, and the one-step form.

The same rules hold for every factor: a transaction is single use with an attempt budget, every failure
counts against the tokens that could have answered (lockout), every attempt is audited, and the session is
issued in the same database transaction that consumed the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import InvalidCredentials, NoUsableToken, TokenLocked, TokenwardError
from server.models import LoginTransaction, Token, User
from server.services import fob, otp, webauthn
from server.services.audit import Actor, record_event
from server.services.factors import Accepted, Factor
from server.services.lockout import is_locked, record_failures
from server.services.runtime import Runtime
from server.services.sessions import ENROLL_SCOPE, IssuedSession, amr_for, issue_session
from server.services.tokens import active_tokens
from server.services.transactions import begin_transaction, claim_attempt, consume_transaction
from server.services.users import (
    USERNAME_PATTERN,
    authenticate_password,
    find_user,
    find_user_with_tokens,
)

FACTORS: tuple[Factor, ...] = (otp.FACTOR, fob.FACTOR, webauthn.FACTOR)


def factor_for_answer(field: str) -> Factor:
    for factor in FACTORS:
        if factor.answer_field == field:
            return factor
    raise NoUsableToken()


@dataclass(frozen=True)
class SecondFactorChallenge:
    transaction_id: str
    expires_in: int
    methods: list[str]
    challenges: dict[
        str, dict[str, Any]
    ]  # per method, what the client is shown (fob challenge, WebAuthn options)


def login_with_password(
    session: Session, rt: Runtime, *, username: str, password: str, actor: Actor
) -> SecondFactorChallenge | IssuedSession:
    """A second-factor challenge, or for a user with no active token an enroll-only session."""
    user = authenticate_password(session, rt, username=username, password=password, actor=actor)
    tokens = active_tokens(session, user_id=user.id)
    record_event(
        session,
        actor=actor,
        action="login.password",
        result="success",
        now=rt.now(),
        target=user.username,
        actor_name=user.username,
    )
    if not tokens:
        return issue_session(session, rt, user=user, amr=["pwd"], scope=ENROLL_SCOPE)
    return _open_transaction(session, rt, user=user, tokens=tokens, password_verified=True)


def start_challenge(session: Session, rt: Runtime, *, username: str, actor: Actor) -> SecondFactorChallenge:
    """`verify {username}`: a transaction without a password. Unknown, disabled or token-less users get a
    decoy transaction that no answer completes, so the answer does not tell who exists."""
    user = find_user(session, username=username)
    tokens = active_tokens(session, user_id=user.id) if user is not None and not user.disabled else []
    target = username if USERNAME_PATTERN.match(username) else ""
    record_event(
        session,
        actor=actor,
        action="login.challenge",
        result="success" if tokens else "failure",
        now=rt.now(),
        target=target,
        reason="" if tokens else "no_usable_token",
    )
    if user is None or not tokens:
        return _open_transaction(session, rt, user=None, tokens=[], password_verified=False)
    return _open_transaction(session, rt, user=user, tokens=tokens, password_verified=False)


def start_passkey_login(session: Session, rt: Runtime, *, actor: Actor) -> SecondFactorChallenge:
    """Usernameless login: the browser offers the user's discoverable credentials; the key names the user."""
    transaction = begin_transaction(session, rt, user_id=None, password_verified=False)
    options = webauthn.passkey_challenge(rt, transaction=transaction)
    record_event(session, actor=actor, action="login.passkey", result="success", now=rt.now())
    session.commit()
    return SecondFactorChallenge(
        transaction.id, rt.settings.transaction_ttl, ["webauthn"], {"webauthn": options}
    )


def _open_transaction(
    session: Session, rt: Runtime, *, user: User | None, tokens: list[Token], password_verified: bool
) -> SecondFactorChallenge:
    transaction = begin_transaction(
        session, rt, user_id=user.id if user else None, password_verified=password_verified
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
    return SecondFactorChallenge(transaction.id, rt.settings.transaction_ttl, methods or ["otp"], challenges)


def verify_transaction(
    session: Session, rt: Runtime, *, transaction_id: str, answer_field: str, answer: Any, actor: Actor
) -> IssuedSession:
    factor = factor_for_answer(answer_field)
    user: User | None = None
    try:
        transaction = claim_attempt(session, rt, transaction_id=transaction_id)
        user = session.get(User, transaction.user_id) if transaction.user_id is not None else None
        tokens = active_tokens(session, user_id=user.id, types=factor.token_types) if user is not None else []
        accepted = _check_factor(session, rt, factor, transaction=transaction, tokens=tokens, answer=answer)
        user = _owner(session, accepted, expected=user)
        consume_transaction(session, rt, transaction_id=transaction_id)
    except TokenwardError as err:
        _record_failure(session, rt, actor=actor, action=f"verify.{factor.method}", user=user, error=err)
        raise
    amr = {*accepted.amr, "pwd"} if transaction.password_verified else set(accepted.amr)
    return _accept(session, rt, actor=actor, factor=factor, user=user, accepted=accepted, amr=amr)


def verify_one_step(
    session: Session, rt: Runtime, *, username: str, code: str, password: str | None, actor: Actor
) -> IssuedSession:
    """`verify {username, otp[, password]}` for other applications' login forms."""
    factor = otp.FACTOR
    user = None
    try:
        if password is not None:
            user = authenticate_password(session, rt, username=username, password=password, actor=actor)
            tokens = active_tokens(session, user_id=user.id, types=factor.token_types)
        else:
            user, tokens = find_user_with_tokens(session, username=username, types=factor.token_types)
            if user is not None and user.disabled:
                user, tokens = None, []
        accepted = _check_factor(session, rt, factor, transaction=None, tokens=tokens, answer=code)
    except TokenwardError as err:
        _record_failure(session, rt, actor=actor, action="verify.otp", user=user, error=err)
        raise
    assert user is not None
    amr = {"otp", "pwd"} if password is not None else {"otp"}
    return _accept(session, rt, actor=actor, factor=factor, user=user, accepted=accepted, amr=amr)


def _check_factor(
    session: Session,
    rt: Runtime,
    factor: Factor,
    *,
    transaction: LoginTransaction | None,
    tokens: list[Token],
    answer: Any,
) -> Accepted:
    """Runs the factor against the user's unlocked tokens of its kind (`tokens`: the user's active tokens of
    the factor's types); a failure counts against each."""
    usable = [token for token in tokens if not is_locked(token, threshold=rt.settings.lockout_threshold)]
    if tokens and not usable:
        raise TokenLocked()
    usable_ids = [token.id for token in usable]
    try:
        return factor.verify(session, rt, transaction=transaction, tokens=usable, answer=answer)
    except TokenwardError:
        session.rollback()
        _count_failures(session, rt, token_ids=usable_ids)
        raise


def _count_failures(session: Session, rt: Runtime, *, token_ids: list[str]) -> None:
    record_failures(session, token_ids=token_ids)
    threshold = rt.settings.lockout_threshold
    newly_locked = session.scalars(
        select(Token.id).where(Token.id.in_(token_ids), Token.fail_count == threshold)
    )
    for token_id in newly_locked:
        record_event(
            session,
            actor=Actor(name="system"),
            action="token.lock",
            result="success",
            now=rt.now(),
            target=f"token:{token_id}",
            reason=TokenLocked.code,
        )


def _owner(session: Session, accepted: Accepted, *, expected: User | None) -> User:
    """The user the accepted token belongs to (a passkey login learns it only now)."""
    owner = session.get(User, accepted.token.user_id) if accepted.token.user_id is not None else None
    if owner is None or owner.disabled or (expected is not None and owner.id != expected.id):
        raise InvalidCredentials()
    return owner


def _record_failure(
    session: Session, rt: Runtime, *, actor: Actor, action: str, user: User | None, error: TokenwardError
) -> None:
    record_event(
        session,
        actor=actor,
        action=action,
        result="failure",
        now=rt.now(),
        target=user.username if user else "",
        reason=error.code,
    )
    session.commit()


def _accept(
    session: Session,
    rt: Runtime,
    *,
    actor: Actor,
    factor: Factor,
    user: User,
    accepted: Accepted,
    amr: set[str],
) -> IssuedSession:
    record_event(
        session,
        actor=actor,
        action=f"verify.{factor.method}",
        result="success",
        now=rt.now(),
        target=user.username,
        actor_name=user.username,
    )
    return issue_session(session, rt, user=user, amr=amr_for(amr))
