"""TOTP/HOTP on pyotp. We add what pyotp leaves to the caller: single use, windows, drift, resync."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pyotp
from sqlalchemy import Float, Integer, Table, bindparam, or_, update
from sqlalchemy.orm import Session

from server.db import Executor, rows_changed
from server.errors import InvalidOtp, ReplayedOtp, ResyncFailed, ValidationFailed
from server.models import LoginTransaction, Token
from server.services.factors import Accepted
from server.services.lockout import AnyToken
from server.services.runtime import Runtime
from server.services.token_secrets import token_secret
from server.token_kinds import TokenType

if TYPE_CHECKING:
    from server.services.verify_rows import TokenRow

ALGORITHMS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
SECRET_BASE32_CHARS = 32  # 160 bits, the RFC 4226 recommendation (pyotp refuses < 112 bits)
_CODE = re.compile(r"^[0-9]{6,8}$")
# HOTP codes this far behind a token's counter are recognised as used ones (`replayed_otp`, audited as
# such) rather than wrong ones; checked with the look-ahead, so the time taken does not tell which matched.
HOTP_REPLAY_LOOKBEHIND = 10

# The consuming UPDATEs, built once as Core statements (the ORM's bulk-update path would also try to
# synchronise the loaded token, which nothing reads before the commit expires it).
_TOKENS = cast(Table, Token.__table__)
_TOKEN_ID = bindparam("token_id", type_=_TOKENS.c.id.type)
_VALUE = bindparam("value", type_=Integer)  # the time step or counter being consumed
_NOW = bindparam("now", type_=Float)
_CONSUME_TIME_STEP = (
    update(_TOKENS)
    .where(
        _TOKENS.c.id == _TOKEN_ID,
        or_(_TOKENS.c.last_time_step.is_(None), _TOKENS.c.last_time_step < _VALUE),
    )
    .values(last_time_step=_VALUE, fail_count=0, last_used_at=_NOW)
)
_CONSUME_COUNTER = (
    update(_TOKENS)
    .where(_TOKENS.c.id == _TOKEN_ID, _TOKENS.c.counter <= _VALUE)
    .values(counter=_VALUE + 1, fail_count=0, last_used_at=_NOW)
)


def new_secret() -> bytes:
    return base64.b32decode(pyotp.random_base32(SECRET_BASE32_CHARS))


def base32_secret(key: bytes) -> str:
    """The key as phone apps want it: base32 without `=` padding."""
    return base64.b32encode(key).decode().rstrip("=")


class _KeyedHOTP(pyotp.HOTP):
    """pyotp's HOTP on a key already decoded: pyotp decodes its base32 secret again for every code it
    generates, and a window check generates one per candidate."""

    def __init__(self, key: bytes, **options: Any) -> None:
        self._key = key
        super().__init__(base32_secret(key), **options)

    def byte_secret(self) -> bytes:
        return self._key


class _KeyedTOTP(pyotp.TOTP):
    """pyotp's TOTP on a key already decoded (see _KeyedHOTP)."""

    def __init__(self, key: bytes, **options: Any) -> None:
        self._key = key
        super().__init__(base32_secret(key), **options)

    def byte_secret(self) -> bytes:
        return self._key


def _otp(token: Token | TokenRow, key: bytes) -> pyotp.OTP:
    digest = getattr(hashlib, ALGORITHMS[token.algorithm or "SHA1"])
    digits = token.digits or 6
    if token.type == TokenType.TOTP:
        return _KeyedTOTP(key, digits=digits, digest=digest, interval=token.period or 30)
    return _KeyedHOTP(key, digits=digits, digest=digest)


def provisioning_uri(
    *,
    token_type: str,
    key: bytes,
    issuer: str,
    username: str,
    algorithm: str,
    digits: int,
    period: int,
    counter: int = 0,
) -> str:
    """otpauth:// URI (Key Uri Format), pyotp's: label `issuer:username`, secret in base32 without padding,
    defaults omitted so phone apps stay happy."""
    options: dict[str, Any] = {
        "digits": digits,
        "digest": getattr(hashlib, ALGORITHMS[algorithm]),
        "name": username,
        "issuer": issuer,
    }
    if token_type == TokenType.TOTP:
        return _KeyedTOTP(key, interval=period, **options).provisioning_uri()
    return _KeyedHOTP(key, initial_count=counter, **options).provisioning_uri()


def normalise_code(code: str, *, digits: int | None = None) -> str:
    code = code.replace(" ", "").replace("-", "")
    if not _CODE.match(code) or (digits is not None and len(code) != digits):
        raise InvalidOtp()
    return code


def _matches(otp: pyotp.OTP, code: str, value: int) -> bool:
    return hmac.compare_digest(otp.generate_otp(value), code)


def find_match(
    rt: Runtime, token: Token | TokenRow, key: bytes, code: str, *, window: int, lookahead: int
) -> int | None:
    """The time step (TOTP) or counter (HOTP) at which `code` is valid, else None. HOTP candidates include
    a few used counters (behind `token.counter`), so that a reused code can be told from a wrong one; a code
    that is valid both at a used and at an unused value (six digits collide about once in a million) is
    the unused one's. Checks every candidate so the time taken does not reveal which one matched."""
    otp = _otp(token, key)
    if token.type == TokenType.TOTP:
        current = int(rt.now()) // (token.period or 30) + token.drift_steps
        candidates = range(current - window, current + window + 1)
        first_unused = -1 if token.last_time_step is None else token.last_time_step + 1
    else:
        first = max(0, token.counter - HOTP_REPLAY_LOOKBEHIND)
        candidates = range(first, token.counter + lookahead + 1)
        first_unused = token.counter
    unused = used = None
    for value in candidates:
        if _matches(otp, code, value):
            if value >= first_unused:
                unused = value if unused is None else unused
            else:
                used = value if used is None else used
    return unused if unused is not None else used


def consume(session: Executor, rt: Runtime, *, token: Token | TokenRow, value: int) -> None:
    """Marks step/counter `value` used by one conditional UPDATE; 0 rows means someone used it first."""
    query = _CONSUME_TIME_STEP if token.type == TokenType.TOTP else _CONSUME_COUNTER
    if rows_changed(session.execute(query, {"token_id": token.id, "value": value, "now": rt.now()})) != 1:
        raise ReplayedOtp()


def check_code_if_matches(
    session: Executor, rt: Runtime, *, token: Token | TokenRow, key: bytes, code: str
) -> bool:
    """Consumes `code` if it is valid for `token` (not committed): True; False if it is not this token's code;
    ReplayedOtp if it was valid but already used."""
    settings = rt.settings
    value = find_match(rt, token, key, code, window=settings.totp_window, lookahead=settings.hotp_lookahead)
    if value is None:
        return False
    if token.type == TokenType.TOTP and token.last_time_step is not None and value <= token.last_time_step:
        raise ReplayedOtp()
    if token.type == TokenType.HOTP and value < token.counter:
        raise ReplayedOtp()
    consume(session, rt, token=token, value=value)
    return True


def check_code(session: Session, rt: Runtime, *, token: Token, key: bytes, code: str) -> None:
    """Verifies and consumes `code` for one token (not committed: the caller commits it with the rest)."""
    if not check_code_if_matches(
        session, rt, token=token, key=key, code=normalise_code(code, digits=token.digits)
    ):
        raise InvalidOtp()


def resync(rt: Runtime, *, token: Token, key: bytes, first_code: str, second_code: str) -> int:
    """Finds two consecutive codes in the wide resync window; stores the drift (TOTP) or counter (HOTP).

    Returns the drift in steps (TOTP) or the counters skipped (HOTP)."""
    digits = token.digits or 6
    first, second = normalise_code(first_code, digits=digits), normalise_code(second_code, digits=digits)
    otp = _otp(token, key)
    wide = rt.settings.resync_window
    if token.type == TokenType.TOTP:
        current = int(rt.now()) // (token.period or 30)
        # nearest drift first, so the smallest consistent correction wins
        for offset in sorted(range(-wide, wide + 1), key=abs):
            step = current + offset
            if _matches(otp, first, step) and _matches(otp, second, step + 1):
                if abs(offset) > rt.settings.max_drift_steps:
                    raise ResyncFailed("The clock drift found is larger than allowed; re-enroll the token")
                token.drift_steps = offset
                token.last_time_step = step + 1
                token.fail_count = 0
                return token.drift_steps
        raise ResyncFailed()
    for counter in range(token.counter, token.counter + wide):
        if _matches(otp, first, counter) and _matches(otp, second, counter + 1):
            skipped = counter - token.counter
            token.counter = counter + 2
            token.fail_count = 0
            return skipped
    raise ResyncFailed()


def validate_options(*, token_type: str, algorithm: str, digits: int, period: int) -> None:
    if algorithm not in ALGORITHMS:
        raise ValidationFailed("algorithm must be SHA1, SHA256 or SHA512")
    if digits not in (6, 8):
        raise ValidationFailed("digits must be 6 or 8")
    if token_type == TokenType.TOTP and period not in (30, 60):
        raise ValidationFailed("period must be 30 or 60")


class OtpFactor:
    """TOTP/HOTP codes typed from a phone app or a hardware OTP token."""

    method = "otp"
    answer_field = "otp"
    refusal_may_write = False  # it writes only the consuming UPDATE, and only on a match
    token_types: tuple[str, ...] = (TokenType.TOTP, TokenType.HOTP)

    def challenge(
        self, session: Session, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token]
    ) -> dict[str, Any] | None:
        return None

    def verify(
        self,
        session: Session,
        rt: Runtime,
        *,
        transaction: LoginTransaction | None,
        tokens: list[Token],
        answer: Any,
    ) -> Accepted:
        return Accepted(token=accept_code(session, rt, tokens=tokens, answer=answer), amr=("otp",))


def accept_code(session: Executor, rt: Runtime, *, tokens: Sequence[AnyToken], answer: Any) -> AnyToken:
    """The token that `answer` is a valid code of, its code consumed (not committed); InvalidOtp, or
    ReplayedOtp when the code was one of theirs but used, otherwise."""
    code = normalise_code(str(answer))
    replayed: ReplayedOtp | None = None
    for token in tokens:
        if token.digits is not None and len(code) != token.digits:
            continue
        try:
            accepted = check_code_if_matches(session, rt, token=token, key=token_secret(rt, token), code=code)
        except ReplayedOtp as err:  # another of the user's tokens may still take the code
            replayed = err
            continue
        if accepted:
            return token
    raise replayed or InvalidOtp()


FACTOR = OtpFactor()
