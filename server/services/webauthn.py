"""Security keys (FIDO2/WebAuthn): registration, and the login factor (including usernameless passkeys).

python-fido2 verifies signatures, challenges, origins and RP IDs. We add what it leaves to the caller: where
the ceremony state lives (a pending token or a login transaction, so any node can finish it), the signature
counter (a regression disables the key), the AAGUID and attestation policy, typed errors for hostile input.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from fido2.attestation.base import InvalidAttestation
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticationResponse,
    PublicKeyCredentialUserEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.errors import (
    AttestationUntrusted,
    AuthenticatorNotAllowed,
    Conflict,
    CredentialCounterRegressed,
    CredentialNotDiscoverable,
    InvalidCredential,
    TokenLocked,
)
from server.models import LoginTransaction, Token, User, new_id
from server.services.account_state import factor_activated
from server.services.audit import Actor, record_event, record_failure
from server.services.enrollment import MAX_TOKENS_PER_USER, check_pending, count_tokens
from server.services.factors import Accepted
from server.services.lockout import is_locked
from server.services.runtime import Runtime
from server.services.webauthn_policy import check_aaguid, relying_party, user_verification
from server.token_kinds import TokenState, TokenType

log = logging.getLogger(__name__)


def user_handle(user: User) -> bytes:
    """The WebAuthn user.id: the user's stable random id, never the username."""
    return bytes.fromhex(user.uid)


def _parse(kind: type[RegistrationResponse] | type[AuthenticationResponse], data: Any) -> Any:
    """python-fido2 raises whatever its parsers meet (KeyError, TypeError, CBOR errors…); any of them means
    the client sent something that is not a credential. Its parser lets a missing or empty `type` and any
    `clientExtensionResults` through, so those two are checked here."""
    if (
        not isinstance(data, dict)
        or data.get("type") != "public-key"
        or not isinstance(data.get("clientExtensionResults", {}), dict)
    ):
        raise InvalidCredential("The credential is malformed")
    try:
        return kind.from_dict(data)
    except Exception as err:  # see docstring
        raise InvalidCredential("The credential is malformed") from err


@dataclass(frozen=True)
class KeyEnrollment:
    token: Token
    options: dict[str, Any]  # {"publicKey": …} for navigator.credentials.create()
    expires_in: int


def begin_registration(
    session: Session, rt: Runtime, *, user: User, description: str, actor: Actor
) -> KeyEnrollment:
    if count_tokens(session, user=user) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"At most {MAX_TOKENS_PER_USER} tokens per user; remove one first")
    registered = session.scalars(
        select(Token.credential_data).where(Token.user_id == user.id, Token.credential_data.is_not(None))
    ).all()
    options, state = relying_party(rt.settings).register_begin(
        PublicKeyCredentialUserEntity(name=user.username, id=user_handle(user), display_name=user.username),
        credentials=[AttestedCredentialData(data) for data in registered if data is not None],
        resident_key_requirement=ResidentKeyRequirement.PREFERRED,
        user_verification=user_verification(rt.settings),
        extensions={"credProps": True},
    )
    token = Token(
        id=new_id(),
        user_id=user.id,
        type=TokenType.WEBAUTHN,
        state=TokenState.PENDING,
        description=description,
        counter=0,
        drift_steps=0,
        fail_count=0,
        sign_count=0,
        discoverable=False,
        created_at=rt.now(),
        enrollment_state=json.dumps(state),
    )
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
    return KeyEnrollment(token=token, options=dict(options), expires_in=rt.settings.pending_ttl)


def complete_registration(
    session: Session, rt: Runtime, *, token: Token, credential: Any, actor: Actor
) -> Token:
    """Verifies the authenticator's answer and activates the token; the ceremony state is used once."""
    check_pending(session, rt, token=token)
    try:
        registration = _parse(RegistrationResponse, credential)
        auth_data = _verified_registration(rt, token, registration)
        credential_data = auth_data.credential_data
        assert credential_data is not None
        check_aaguid(rt.settings, str(credential_data.aaguid))
        cred_props = registration.client_extension_results.get("credProps")
        activated = rows_changed(
            session.execute(
                update(Token)
                .where(
                    Token.id == token.id,
                    Token.state == TokenState.PENDING,
                    Token.enrollment_state == token.enrollment_state,
                )
                .values(
                    state=TokenState.ACTIVE,
                    enrollment_state=None,
                    activated_at=rt.now(),
                    credential_id=credential_data.credential_id,
                    credential_data=bytes(credential_data),
                    sign_count=auth_data.counter,
                    aaguid=str(credential_data.aaguid),
                    discoverable=isinstance(cred_props, dict) and cred_props.get("rk") is True,
                )
            )
        )
        if activated != 1:
            raise Conflict("The token is already active")
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
    except IntegrityError as err:
        session.rollback()
        _record_activation_failure(session, rt, token=token, actor=actor, reason="duplicate_credential")
        raise Conflict("This security key is already registered") from err
    except (InvalidCredential, AttestationUntrusted, AuthenticatorNotAllowed, Conflict) as err:
        session.rollback()
        _record_activation_failure(session, rt, token=token, actor=actor, reason=err.code)
        raise
    session.refresh(token)
    return token


def _verified_registration(rt: Runtime, token: Token, response: RegistrationResponse) -> Any:
    state = json.loads(token.enrollment_state or "null")
    if state is None:
        raise InvalidCredential("No registration is waiting for this token")
    try:
        return relying_party(rt.settings).register_complete(state, response)
    except InvalidAttestation as err:
        raise AttestationUntrusted() from err
    except ValueError as err:
        raise InvalidCredential(_reason(err)) from err


def _record_activation_failure(
    session: Session, rt: Runtime, *, token: Token, actor: Actor, reason: str
) -> None:
    record_failure(
        session,
        actor=actor,
        action="token.activate",
        now=rt.now(),
        target=f"token:{token.id}",
        reason=reason,
    )


def _reason(err: ValueError) -> str:
    """python-fido2's messages name the failed check (origin, challenge, RP ID hash, signature) and never
    echo input, so they are safe to pass on."""
    return f"The security key response is not valid: {str(err)[:120]}"


class WebauthnFactor:
    """A security key's assertion. Without a user (passkey login) the key is found by its credential id, the
    user by the key, and user verification is required."""

    method = "webauthn"
    answer_field = "credential"
    refusal_may_write = True
    token_types: tuple[str, ...] = (TokenType.WEBAUTHN,)

    def challenge(
        self, session: Session, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token]
    ) -> dict[str, Any] | None:
        options, state = relying_party(rt.settings).authenticate_begin(
            credentials=[
                AttestedCredentialData(token.credential_data) for token in tokens if token.credential_data
            ],
            user_verification=user_verification(rt.settings),
        )
        transaction.webauthn_state = json.dumps(state)
        return dict(options)

    def verify(
        self,
        session: Session,
        rt: Runtime,
        *,
        transaction: LoginTransaction | None,
        tokens: list[Token],
        answer: Any,
    ) -> Accepted:
        if transaction is None or transaction.webauthn_state is None:
            raise InvalidCredential("This login did not ask for a security key")
        response = _parse(AuthenticationResponse, answer)
        token, registered = self._find_token(
            session, rt, transaction=transaction, tokens=tokens, response=response
        )
        try:
            relying_party(rt.settings).authenticate_complete(
                json.loads(transaction.webauthn_state), [registered], response
            )
        except ValueError as err:
            raise InvalidCredential(_reason(err)) from err
        if transaction.user_id is None and not token.discoverable:
            # A passkey login needs a credential registered as discoverable (credProps rk). Checked after the
            # signature, so only the key's holder learns why.
            raise CredentialNotDiscoverable()
        _advance_counter(session, rt, token=token, counter=response.response.authenticator_data.counter)
        verified = response.response.authenticator_data.is_user_verified()
        return Accepted(token=token, amr=("hwk", "mfa") if verified else ("hwk",), phishing_resistant=True)

    @staticmethod
    def _find_token(
        session: Session, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token], response: Any
    ) -> tuple[Token, AttestedCredentialData]:
        if transaction.user_id is not None:
            token = next((token for token in tokens if token.credential_id == response.raw_id), None)
        else:
            token = session.scalar(
                select(Token).where(
                    Token.credential_id == response.raw_id,
                    Token.type == TokenType.WEBAUTHN,
                    Token.state == TokenState.ACTIVE,
                )
            )
            if token is not None and is_locked(token, threshold=rt.settings.lockout_threshold, now=rt.now()):
                raise TokenLocked()
            owner = session.get(User, token.user_id) if token is not None and token.user_id else None
            handle = response.response.user_handle
            if owner is None or handle is None or handle != user_handle(owner):
                token = None
        if token is None or token.credential_data is None:
            raise InvalidCredential("This security key is not registered for this login")
        return token, AttestedCredentialData(token.credential_data)


def _advance_counter(session: Session, rt: Runtime, *, token: Token, counter: int) -> None:
    """A counter that does not increase means a cloned key (unless the authenticator always says 0): the key
    is disabled at once and the event audited, even though this login fails. A good assertion also clears
    the token's failure count (lockout counts consecutive failures) and records its use."""
    used = {"fail_count": 0, "last_used_at": rt.now()}
    if counter == 0 and token.sign_count == 0:
        session.execute(update(Token).where(Token.id == token.id).values(**used))
        return
    advanced = rows_changed(
        session.execute(
            update(Token)
            .where(Token.id == token.id, Token.sign_count < counter)
            .values(sign_count=counter, **used)
        )
    )
    if advanced == 1:
        return
    if counter > token.sign_count:
        raise InvalidCredential("This security key was used by another login at the same moment")
    session.rollback()
    session.execute(update(Token).where(Token.id == token.id).values(state=TokenState.DISABLED))
    record_failure(
        session,
        actor=Actor(name="system"),
        action="token.counter_regression",
        now=rt.now(),
        target=f"token:{token.id}",
        reason=CredentialCounterRegressed.code,
    )
    log.warning("security key %s presented a non-increasing signature counter; disabled", token.id)
    raise CredentialCounterRegressed()


def passkey_challenge(rt: Runtime, *, transaction: LoginTransaction) -> dict[str, Any]:
    """Request options without allowCredentials (the browser offers the user's discoverable keys)."""
    options, state = relying_party(rt.settings).authenticate_begin(
        user_verification=UserVerificationRequirement.REQUIRED
    )
    transaction.webauthn_state = json.dumps(state)
    return dict(options)


FACTOR = WebauthnFactor()
