"""OCRA, the OATH challenge-response algorithm of RFC 6287.

`OcraSuite.parse` accepts only the canonical spelling of a suite, because the suite text itself is hashed
into every response: two spellings of "the same" suite would give different answers. So `str(suite)` always
gives back the exact text that was parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal, cast

__all__ = [
    "DEFAULT_SUITE",
    "OcraError",
    "OcraInputError",
    "OcraSuite",
    "OcraSuiteError",
    "TimeStep",
    "as_suite",
    "hash_pin",
    "ocra_response",
    "random_challenge",
    "time_step_at",
]

DEFAULT_SUITE = "OCRA-1:HOTP-SHA1-6:QN08"

HashName = Literal["SHA1", "SHA256", "SHA512"]
QuestionFormat = Literal["A", "N", "H"]
TimeUnit = Literal["S", "M", "H"]

_DIGEST_SIZES: dict[str, int] = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
_UNIT_SECONDS: dict[str, int] = {"S": 1, "M": 60, "H": 3600}
# RFC 6287 §5.1: Q is the challenge padded to 128 bytes; C and T are 8-byte big-endian integers.
_QUESTION_BYTES = 128
_MIN_CHALLENGE_LENGTH = 4
_UINT64_LIMIT = 1 << 64
_MAX_SUITE_LENGTH = 64
# Alphanumeric challenges come from upper case and digits: unambiguous to read out and type.
_RANDOM_ALPHABETS: dict[str, str] = {
    "N": string.digits,
    "A": string.ascii_uppercase + string.digits,
    "H": "0123456789ABCDEF",
}
_CHALLENGE_PATTERNS: dict[str, re.Pattern[str]] = {
    "N": re.compile(r"[0-9]+"),
    "A": re.compile(r"[0-9A-Za-z]+"),
    "H": re.compile(r"[0-9A-Fa-f]+"),
}

_SUITE_PATTERN = re.compile(
    r"OCRA-1:HOTP-(?P<hash>SHA1|SHA256|SHA512)-(?P<digits>0|[4-9]|10):"
    r"(?P<counter>C-)?"
    r"Q(?P<qformat>[ANH])(?P<qlength>0[4-9]|[1-5][0-9]|6[0-4])"
    r"(?:-PSHA(?P<pin>1|256|512))?"
    r"(?:-S(?P<session>[0-9]{3}))?"
    r"(?:-T(?:(?P<tsm>[1-9]|[1-5][0-9])(?P<tunit>[SM])|(?P<th>[0-9]|[1-3][0-9]|4[0-8])H))?"
)


class OcraError(ValueError):
    """A suite or an input that RFC 6287 does not allow. Messages never contain keys or responses."""


class OcraSuiteError(OcraError):
    """The suite text is not a valid OCRA-1 suite."""


class OcraInputError(OcraError):
    """A challenge, counter, PIN hash, session or time input is missing, superfluous or ill-formed."""


@dataclass(frozen=True)
class TimeStep:
    """The T granularity of a suite: `count` units of S(econds), M(inutes) or H(ours)."""

    count: int
    unit: TimeUnit

    @property
    def seconds(self) -> int:
        return self.count * _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@dataclass(frozen=True)
class OcraSuite:
    """A parsed OCRA suite; build one with `OcraSuite.parse`."""

    hash_name: HashName
    digits: int
    question_format: QuestionFormat
    question_length: int
    counter: bool = False
    pin_hash_name: HashName | None = None
    session_length: int | None = None
    time_step: TimeStep | None = None

    def __post_init__(self) -> None:
        # Built directly rather than parsed: the fields must still spell a valid suite.
        if _SUITE_PATTERN.fullmatch(str(self)) is None:
            raise OcraSuiteError("not a valid OCRA-1 suite (RFC 6287 §6)")

    @property
    def pin_hash_size(self) -> int | None:
        """The length in bytes of the PIN hash the suite takes; None for a suite without a PIN."""
        return None if self.pin_hash_name is None else _DIGEST_SIZES[self.pin_hash_name]

    @classmethod
    def parse(cls, text: str) -> OcraSuite:
        if not isinstance(text, str) or len(text) > _MAX_SUITE_LENGTH:
            raise OcraSuiteError("not an OCRA suite")
        match = _SUITE_PATTERN.fullmatch(text)
        if match is None:
            raise OcraSuiteError("not a valid OCRA-1 suite (RFC 6287 §6)")
        groups = match.groupdict()
        time_step: TimeStep | None = None
        if groups["tsm"] is not None:
            time_step = TimeStep(int(groups["tsm"]), cast(TimeUnit, groups["tunit"]))
        elif groups["th"] is not None:
            time_step = TimeStep(int(groups["th"]), "H")
        pin = groups["pin"]
        return cls(
            hash_name=cast(HashName, groups["hash"]),
            digits=int(groups["digits"]),
            question_format=cast(QuestionFormat, groups["qformat"]),
            question_length=int(groups["qlength"]),
            counter=groups["counter"] is not None,
            pin_hash_name=cast(HashName, f"SHA{pin}") if pin is not None else None,
            session_length=int(groups["session"]) if groups["session"] is not None else None,
            time_step=time_step,
        )

    def __str__(self) -> str:
        inputs = ["C"] if self.counter else []
        inputs.append(f"Q{self.question_format}{self.question_length:02d}")
        if self.pin_hash_name is not None:
            inputs.append(f"P{self.pin_hash_name}")
        if self.session_length is not None:
            inputs.append(f"S{self.session_length:03d}")
        if self.time_step is not None:
            inputs.append(f"T{self.time_step}")
        return f"OCRA-1:HOTP-{self.hash_name}-{self.digits}:{'-'.join(inputs)}"


def as_suite(suite: OcraSuite | str) -> OcraSuite:
    """The suite itself, or the text parsed (`OcraSuiteError` for a bad one)."""
    return suite if isinstance(suite, OcraSuite) else OcraSuite.parse(suite)


def _check_challenge(suite: OcraSuite, challenge: str) -> None:
    pattern = _CHALLENGE_PATTERNS[suite.question_format]
    if not isinstance(challenge, str) or pattern.fullmatch(challenge) is None:
        raise OcraInputError(f"the challenge must be of format Q{suite.question_format}")
    if not _MIN_CHALLENGE_LENGTH <= len(challenge) <= suite.question_length:
        raise OcraInputError(
            f"the challenge must have {_MIN_CHALLENGE_LENGTH} to {suite.question_length} characters"
        )


def _question_bytes(suite: OcraSuite, question: str | tuple[str, str]) -> bytes:
    """Q as RFC 6287 §5.1 encodes it; a pair of challenges is the mutual mode of §7.3, concatenated."""
    challenges = (question,) if isinstance(question, str) else tuple(question)
    if len(challenges) not in (1, 2):
        raise OcraInputError("the question is one challenge or a pair of them")
    for challenge in challenges:
        _check_challenge(suite, challenge)
    text = "".join(challenges)
    if suite.question_format == "N":
        hex_text = format(int(text), "X")
    elif suite.question_format == "H":
        hex_text = text
    else:
        hex_text = text.encode("ascii").hex()
    # Padding is on the right, by hex digit, as in the RFC's reference code (an odd digit count shifts).
    return bytes.fromhex(hex_text.ljust(2 * _QUESTION_BYTES, "0"))


def _uint64(name: str, value: int | None, wanted: bool) -> bytes:
    if not wanted:
        if value is not None:
            raise OcraInputError(f"the suite takes no {name}")
        return b""
    if value is None:
        raise OcraInputError(f"the suite needs a {name}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UINT64_LIMIT:
        raise OcraInputError(f"the {name} must be an integer from 0 to 2**64 - 1")
    return value.to_bytes(8, "big")


def _pin_bytes(suite: OcraSuite, pin_hash: bytes | None) -> bytes:
    if suite.pin_hash_name is None:
        if pin_hash is not None:
            raise OcraInputError("the suite takes no PIN")
        return b""
    if pin_hash is None:
        raise OcraInputError("the suite needs a PIN hash")
    if not isinstance(pin_hash, bytes) or len(pin_hash) != suite.pin_hash_size:
        raise OcraInputError(f"the PIN hash must be a {suite.pin_hash_name} digest")
    return pin_hash


def _session_bytes(suite: OcraSuite, session_info: bytes | None) -> bytes:
    if suite.session_length is None:
        if session_info is not None:
            raise OcraInputError("the suite takes no session information")
        return b""
    if session_info is None:
        raise OcraInputError("the suite needs session information")
    if not isinstance(session_info, bytes) or len(session_info) > suite.session_length:
        raise OcraInputError(f"the session information must be at most {suite.session_length} bytes")
    # Shorter session information is left-padded with zero bytes, as the RFC's reference code does.
    return session_info.rjust(suite.session_length, b"\0")


def _truncate(digest: bytes, digits: int) -> str:
    if digits == 0:
        return digest.hex()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def ocra_response(
    suite: OcraSuite | str,
    key: bytes,
    *,
    question: str | tuple[str, str],
    counter: int | None = None,
    pin_hash: bytes | None = None,
    session_info: bytes | None = None,
    time_step: int | None = None,
) -> str:
    """The response of RFC 6287 §5.2 as decimal digits (or lower-case hex of the whole HMAC when t = 0).

    Every input the suite names is required and every input it does not name is refused, so that a mistake in
    a caller's configuration surfaces as an `OcraInputError` instead of a silently different response.
    """
    parsed = as_suite(suite)
    if not isinstance(key, bytes) or not key:
        raise OcraInputError("the key must be non-empty bytes")
    message = b"".join(
        (
            str(parsed).encode("ascii"),
            b"\0",
            _uint64("counter", counter, parsed.counter),
            _question_bytes(parsed, question),
            _pin_bytes(parsed, pin_hash),
            _session_bytes(parsed, session_info),
            _uint64("time step", time_step, parsed.time_step is not None),
        )
    )
    digest = hmac.new(key, message, parsed.hash_name.lower()).digest()
    return _truncate(digest, parsed.digits)


def hash_pin(suite: OcraSuite | str, pin: str) -> bytes:
    """The P input for a PIN (its UTF-8 bytes hashed with the suite's PIN hash)."""
    parsed = as_suite(suite)
    if parsed.pin_hash_name is None:
        raise OcraInputError("the suite takes no PIN")
    return hashlib.new(parsed.pin_hash_name.lower(), pin.encode("utf-8")).digest()


def random_challenge(suite: OcraSuite | str) -> str:
    """A fresh challenge of the suite's format and maximum length, from `secrets`."""
    parsed = as_suite(suite)
    alphabet = _RANDOM_ALPHABETS[parsed.question_format]
    return "".join(secrets.choice(alphabet) for _ in range(parsed.question_length))


def time_step_at(suite: OcraSuite | str, unix_seconds: float) -> int:
    """The T input at a UNIX time: whole time steps of the suite's granularity since the epoch."""
    parsed = as_suite(suite)
    if parsed.time_step is None:
        raise OcraInputError("the suite takes no time step")
    if parsed.time_step.seconds == 0:
        raise OcraInputError("a 0H time step has no period to count")
    if unix_seconds < 0:
        raise OcraInputError("the time must not be before the epoch")
    return int(unix_seconds // parsed.time_step.seconds)
