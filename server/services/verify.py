"""Answering a sign-in: a transaction's answer (a factor, or a recovery or temporary code) and the one-step
code of a registered client's login form.

The same rules hold for every factor: a transaction is single use with an attempt budget, each guess is
counted against the tokens that could have answered before it is checked (lockout), every attempt is
audited, and the session is issued in the same database transaction that consumed the answer. A caller who
has not proved a password is told nothing a wrong answer would not tell (a locked token, an unknown name).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from server.db import Executor
from server.errors import (
    InvalidClient,
    InvalidCredential,
    InvalidCredentials,
    InvalidFobResponse,
    InvalidOtp,
    InvalidRecoveryCode,
    InvalidTemporaryCode,
    MfaRequired,
    NoUsableToken,
    ReplayedOtp,
    TokenLocked,
    TokenwardError,
    TransactionExpired,
)
from server.models import Client, LoginTransaction, Token, User
from server.services import otp
from server.services.assurance import ENROLL_SCOPE, FULL_SCOPE, Acr, acr_for, amr_for, meets
from server.services.audit import Actor, record_event, record_failure
from server.services.clients import require_method
from server.services.directory_standing import confirm_directory_standing
from server.services.factors import Accepted, Factor
from server.services.lockout import claim_guesses, clear_locks, lock_exhausted
from server.services.login import FACTORS
from server.services.recovery_codes import consume_recovery_code, consume_temporary_code
from server.services.runtime import Runtime
from server.services.sessions import Earned, IssuedSession, family_stands, issue_session, replace_family
from server.services.token_secrets import seal_secret
from server.services.tokens import active_tokens
from server.services.transactions import claim_attempt, consume_transaction
from server.services.users import confirm_sign_in
from server.services.verify_rows import ClientRow, UserRow
from server.token_kinds import TokenType

WRONG_ANSWER: dict[str, type[TokenwardError]] = {
    "otp": InvalidOtp,
    "fob": InvalidFobResponse,
    "webauthn": InvalidCredential,
}
CODE_ANSWERS = {"recovery_code": InvalidRecoveryCode, "temporary_code": InvalidTemporaryCode}


@dataclass(frozen=True)
class Verified:
    """An accepted answer, audited and not yet committed: the HTTP doors issue a session for it, the RADIUS
    door commits and answers Access-Accept."""

    user: User | UserRow
    earned: Earned
    method: str


def factor_for_answer(field: str) -> Factor:
    for factor in FACTORS:
        if factor.answer_field == field:
            return factor
    raise NoUsableToken()


def verify_transaction(
    session: Session,
    rt: Runtime,
    *,
    transaction_id: str,
    answer_field: str,
    answer: Any,
    client: Client | None,
    actor: Actor,
) -> IssuedSession:
    verified = check_transaction_answer(
        session,
        rt,
        transaction_id=transaction_id,
        answer_field=answer_field,
        answer=answer,
        client=client,
        actor=actor,
    )
    return issue_session(session, rt, user=verified.user, earned=verified.earned)


def check_transaction_answer(
    session: Session,
    rt: Runtime,
    *,
    transaction_id: str,
    answer_field: str,
    answer: Any,
    client: Client | None,
    actor: Actor,
) -> Verified:
    """A transaction's answer checked, consumed and audited (not committed); a typed error otherwise."""
    method = answer_field if answer_field in CODE_ANSWERS else factor_for_answer(answer_field).method
    user: User | None = None
    try:
        transaction = claim_attempt(session, rt, transaction_id=transaction_id)
        if transaction.client_id != (client.id if client is not None else None):
            raise InvalidClient("This transaction belongs to another client")
        if transaction.replaces_family and not family_stands(
            session, rt, family_id=transaction.replaces_family
        ):
            raise TransactionExpired()  # a step-up ends with its session; its code stays unspent
        user = session.get(User, transaction.user_id) if transaction.user_id is not None else None
        if answer_field in CODE_ANSWERS:
            earned = _check_code(
                session, rt, transaction=transaction, user=user, field=answer_field, answer=answer
            )
        else:
            factor = factor_for_answer(answer_field)
            require_method(client, factor.method)
            if factor.method == otp.FACTOR.method:  # a code proves "otp", and the password if it was checked
                refuse_unreachable(client, amr=("otp", "pwd") if transaction.password_verified else ("otp",))
            if transaction.decoy:
                _check_decoy(session, rt, factor=factor, answer=answer, reason="unknown_user")
            tokens = active_tokens(session, user_id=user.id, types=factor.token_types) if user else []
            accepted = _check_factor(
                session,
                rt,
                factor,
                transaction=transaction,
                tokens=tokens,
                answer=answer,
                # A client's password-less transaction names a user nobody proved to be.
                anonymous=transaction.client_id is not None and not transaction.password_verified,
            )
            user = _owner(session, accepted, expected=user)
            if not transaction.password_verified or transaction.replaces_family:
                confirm_directory_standing(rt, user=user)  # nobody asked the directory for this sign-in
            earned = earned_by(
                accepted.amr,
                phishing_resistant=accepted.phishing_resistant,
                password=transaction.password_verified,
                client=client,
            )
        if user is not None:
            confirm_sign_in(session, user=user, client=client)
        consume_transaction(session, rt, transaction_id=transaction_id)
        if transaction.replaces_family and not replace_family(
            session, rt, family_id=transaction.replaces_family
        ):
            raise TransactionExpired()  # its session ended while the answer was checked
    except TokenwardError as err:
        record_verify_failure(session, rt, actor=actor, action=f"verify.{method}", user=user, error=err)
        raise
    assert user is not None  # _check_code and _owner refuse a transaction without one
    return accept_verified(session, rt, actor=actor, method=method, user=user, earned=earned)


def _check_factor(
    session: Session,
    rt: Runtime,
    factor: Factor,
    *,
    transaction: LoginTransaction | None,
    tokens: list[Token],
    answer: Any,
    anonymous: bool,
    decoy: bool = False,
) -> Accepted:
    """Counts a guess against each of the user's unlocked tokens of the factor's kind, then runs the factor
    against those; a wrong answer keeps the counts (and locks what reached the threshold). `decoy`: the
    tokens are throwaway ones that no statement finds (see _check_decoy).

    `anonymous`: the caller named a user without proving a password. It learns no more than a decoy would
    tell: a locked token, a malformed answer or a cloned key all answer as the plain wrong answer (the
    audit log keeps the real reason). A replayed code stays `replayed_otp`: only a holder of a valid code
    sees it."""
    claimed = claim_guesses(session, rt, tokens=tokens)
    if decoy:
        claimed = tokens
    if tokens and not claimed:
        raise hidden_refusal(factor, TokenLocked()) if anonymous else TokenLocked()
    # A savepoint: a wrong answer undoes what the factor wrote but keeps the counted guesses. (A factor may
    # end the transaction itself, as a cloned key's disabling does; then the savepoint is gone already.)
    # A factor whose refusals write nothing (OTP) needs none: two statements fewer on every verify.
    savepoint = session.begin_nested() if factor.refusal_may_write else None
    try:
        accepted = factor.verify(session, rt, transaction=transaction, tokens=claimed, answer=answer)
    except TokenwardError as err:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        lock_exhausted(session, rt, token_ids=[token.id for token in claimed])
        if anonymous and not isinstance(err, ReplayedOtp):
            raise hidden_refusal(factor, err) from err
        raise
    if savepoint is not None:
        savepoint.commit()
    clear_locks(session, token=accepted.token)
    return accepted


def hidden_refusal(factor: Factor, error: TokenwardError) -> TokenwardError:
    """The factor's plain wrong answer, audited with the real reason."""
    refused = WRONG_ANSWER[factor.method]()
    refused.audit_reason = error.audit_reason or error.code
    return refused


def _check_decoy(session: Session, rt: Runtime, *, factor: Factor, answer: Any, reason: str) -> None:
    """A name without usable tokens: a code is checked against a throwaway token along the very path a real
    one takes (the same statements, matching no row, and the same computing), so the time taken tells
    nothing; it is always refused, and the audit log says why. (Keys and fobs are refused at once: a key's
    check without a user would look for any user's passkey.)"""
    if factor.method == "otp":
        token = Token(id=secrets.token_hex(16), type=TokenType.TOTP, algorithm="SHA1", digits=6, period=30)
        token.counter, token.drift_steps, token.last_time_step = 0, 0, None
        token.fail_count, token.lock_count, token.locked_until = 0, 0, None
        seal_secret(rt, token, otp.new_secret())
        with contextlib.suppress(TokenwardError):
            _check_factor(
                session,
                rt,
                factor,
                transaction=None,
                tokens=[token],
                answer=answer,
                anonymous=True,
                decoy=True,
            )
    refused = WRONG_ANSWER[factor.method]()
    refused.audit_reason = reason
    raise refused


def _check_code(
    session: Session,
    rt: Runtime,
    *,
    transaction: LoginTransaction,
    user: User | None,
    field: str,
    answer: Any,
) -> Earned:
    """A recovery or temporary code answers only a password-verified sign-in (not a step-up); its session
    may enroll a replacement factor."""
    if user is None or not transaction.password_verified or transaction.replaces_family or transaction.decoy:
        raise CODE_ANSWERS[field]()
    if field == "recovery_code":
        consume_recovery_code(session, rt, user_id=user.id, code=str(answer))
    else:
        consume_temporary_code(session, rt, user_id=user.id, code=str(answer))
    return Earned(amr=["pwd", field], acr=Acr.RECOVERY, scope=ENROLL_SCOPE)


def refuse_unreachable(client: Client | ClientRow | None, *, amr: tuple[str, ...]) -> None:
    """MfaRequired before the answer is checked when what it would prove (`amr`) cannot reach the level
    the client requires: a valid code is not spent only to be refused, and valid and wrong codes get the
    same answer."""
    required = client.required_acr if client is not None else None
    if required and not meets(acr_for(amr_for(amr), phishing_resistant=False), required):
        raise MfaRequired(f"This application requires {required} sign-in")


def earned_by(
    proved: tuple[str, ...], *, phishing_resistant: bool, password: bool, client: Client | ClientRow | None
) -> Earned:
    """What an accepted answer (`proved`: its amr values), with the password when checked, earns."""
    amr = amr_for({*proved, "pwd"} if password else proved)
    acr = acr_for(amr, phishing_resistant=phishing_resistant)
    if client is not None and client.required_acr and not meets(acr, client.required_acr):
        raise MfaRequired(f"This application requires {client.required_acr} sign-in")
    return Earned(amr=amr, acr=acr, scope=FULL_SCOPE, client=client)


def _owner(session: Session, accepted: Accepted, *, expected: User | None) -> User:
    """The user the accepted token belongs to (a passkey login learns it only now)."""
    owner = session.get(User, accepted.token.user_id) if accepted.token.user_id is not None else None
    if owner is None or owner.disabled or (expected is not None and owner.id != expected.id):
        raise InvalidCredentials()
    return owner


def record_verify_failure(
    session: Session,
    rt: Runtime,
    *,
    actor: Actor,
    action: str,
    user: User | UserRow | None,
    error: TokenwardError,
) -> None:
    record_failure(
        session,
        actor=actor,
        action=action,
        now=rt.now(),
        target=user.username if user else "",
        reason=error.audit_reason or error.code,
    )


def accept_verified(
    session: Executor, rt: Runtime, *, actor: Actor, method: str, user: User | UserRow, earned: Earned
) -> Verified:
    record_event(
        session,
        actor=actor,
        action=f"verify.{method}",
        result="success",
        now=rt.now(),
        target=user.username,
        actor_name=user.username,
    )
    return Verified(user=user, earned=earned, method=method)
