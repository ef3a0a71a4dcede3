"""The one-step code of a registered client's login form (`verify {username, otp[, password]}`), and of a
RADIUS NAS that checked the password itself.

The rules are those of every verify (server.services.verify): each guess is counted against the user's
unlocked tokens before it is checked (lockout), the code is consumed by a conditional UPDATE whose row count
decides, the user and the client are confirmed (share-locked on PostgreSQL) in the transaction that issues
the session, every attempt is audited, and a caller who proved no password learns no more than a wrong
code tells. Only the data access differs: the rows are plain ones read by prebuilt Core statements
(server.services.verify_rows), so the hot path never loads an ORM object, and its commit has nothing to
flush or expire.
"""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from server.db import end_reads
from server.errors import (
    InvalidClient,
    InvalidCredentials,
    InvalidOtp,
    ReplayedOtp,
    TokenLocked,
    TokenwardError,
)
from server.models import Client
from server.services import otp
from server.services.audit import Actor
from server.services.clients import require_method
from server.services.directory_standing import confirm_directory_standing
from server.services.lockout import claim_guesses, clear_locks, lock_exhausted
from server.services.runtime import Runtime
from server.services.sessions import IssuedSession, issue_session
from server.services.users import authenticate_password
from server.services.verify import (
    Verified,
    accept_verified,
    earned_by,
    hidden_refusal,
    record_verify_failure,
    refuse_unreachable,
)
from server.services.verify_rows import (
    ClientRow,
    TokenRow,
    UserRow,
    active_tokens,
    client_stands,
    connection_of,
    find_user_with_tokens,
    read_client,
    still_signs_in,
)
from server.token_kinds import TokenType

FACTOR = otp.FACTOR


def verify_one_step(
    session: Session,
    rt: Runtime,
    *,
    username: str,
    code: str,
    password: str | None,
    client: ClientRow,
    actor: Actor,
) -> IssuedSession:
    """`verify {username, otp[, password]}` from a registered client's login form."""
    verified = check_one_step(
        session, rt, username=username, code=code, password=password, client=client, actor=actor
    )
    return issue_session(session, rt, user=verified.user, earned=verified.earned)


def check_one_step(
    session: Session,
    rt: Runtime,
    *,
    username: str,
    code: str,
    password: str | None,
    client: ClientRow | Client,
    actor: Actor,
) -> Verified:
    """A one-step code (after the password, when given) checked and audited (not committed). The client and
    the user may have been read in a transaction of their own (`server.db.begin_reads`), ended here."""
    client = client if isinstance(client, ClientRow) else ClientRow.of(client)
    user: UserRow | None = None
    try:
        try:
            require_method(client, FACTOR.method)
            refuse_unreachable(client, amr=("otp", "pwd") if password is not None else ("otp",))
            if password is None:
                user, tokens = find_user_with_tokens(
                    connection_of(session), username=username, types=FACTOR.token_types
                )
        finally:
            end_reads(session)  # what follows writes (on SQLite, in the node's write lock)
        if password is not None:
            checked = authenticate_password(session, rt, username=username, password=password, actor=actor)
            user = UserRow.of(checked)
            client = _reload_client(session, client)
            tokens = active_tokens(connection_of(session), user_id=user.id, types=FACTOR.token_types)
        # The writes and the confirmation run on the transaction's connection: nothing here is an ORM object.
        connection = connection_of(session)
        if password is None and (user is None or user.disabled or not tokens):
            reason = "unknown_user" if user is None else "no_usable_token"
            _check_decoy(connection, rt, code=code, reason=reason)
        _check_code(connection, rt, tokens=tokens, code=code, anonymous=password is None)
        assert user is not None  # _check_decoy refuses a name without one
        _confirm_sign_in(connection, user=user, client=client)
        if password is None:
            confirm_directory_standing(rt, user=user)  # a password check would have asked the directory
        earned = earned_by(("otp",), phishing_resistant=False, password=password is not None, client=client)
    except TokenwardError as err:
        record_verify_failure(session, rt, actor=actor, action="verify.otp", user=user, error=err)
        raise
    return accept_verified(connection, rt, actor=actor, method=FACTOR.method, user=user, earned=earned)


def _check_code(
    connection: Connection,
    rt: Runtime,
    *,
    tokens: list[TokenRow],
    code: str,
    anonymous: bool,
    decoy: bool = False,
) -> TokenRow:
    """server.services.verify._check_factor for OTP codes on rows: counts a guess against each unlocked token,
    then checks the code against those; a wrong code keeps the counts (and locks what reached the threshold).
    No savepoint: an OTP check writes only the consuming UPDATE, and only on a match. `decoy`: the tokens are
    throwaway ones that no statement finds (see _check_decoy)."""
    claimed = claim_guesses(connection, rt, tokens=tokens)
    if decoy:
        claimed = tokens
    if tokens and not claimed:
        raise hidden_refusal(FACTOR, TokenLocked()) if anonymous else TokenLocked()
    try:
        accepted = otp.accept_code(connection, rt, tokens=claimed, answer=code)
    except TokenwardError as err:
        lock_exhausted(connection, rt, token_ids=[token.id for token in claimed])
        if anonymous and not isinstance(err, ReplayedOtp):
            raise hidden_refusal(FACTOR, err) from err
        raise
    clear_locks(connection, token=accepted)
    return accepted


def _check_decoy(connection: Connection, rt: Runtime, *, code: str, reason: str) -> None:
    """A name without usable tokens: the code is checked against a throwaway token along the very path a real
    one takes (the same statements, matching no row, and the same computing), so the time taken tells
    nothing; it is always refused, and the audit log says why."""
    token_id = secrets.token_hex(16)
    sealed = rt.box.seal(otp.new_secret(), associated_data=f"token:{token_id}")
    token = TokenRow(token_id, None, TokenType.TOTP, "SHA1", 6, 30, 0, 0, None, 0, None, sealed)
    with contextlib.suppress(TokenwardError):
        _check_code(connection, rt, tokens=[token], code=code, anonymous=True, decoy=True)
    refused = InvalidOtp()
    refused.audit_reason = reason
    raise refused


def _reload_client(session: Session, client: ClientRow) -> ClientRow:
    """The client as it is now: the password check ended the transaction the client was read in (the hash
    runs outside one), and a client removed meanwhile is refused as an unknown one."""
    found = read_client(connection_of(session), client_id=client.id)
    if found is None or found.secret_hash != client.secret_hash:  # removed, or its secret rotated
        raise InvalidClient()
    return found


def _confirm_sign_in(connection: Connection, *, user: UserRow, client: ClientRow) -> None:
    """server.services.users.confirm_sign_in on rows: the user still enabled and the client still
    registered, and so until this sign-in commits; InvalidCredentials (audited as `user_disabled`) or
    InvalidClient otherwise."""
    if still_signs_in(connection, user_id=user.id, client=client):
        return
    if not client_stands(connection, client=client):
        raise InvalidClient()
    refused = InvalidCredentials()
    refused.audit_reason = "user_disabled"
    raise refused
