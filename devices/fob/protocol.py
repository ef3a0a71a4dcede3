"""The fob's line protocol as a pure codec: frames in, dataclasses out, no I/O (PROTOCOL.md specifies it).

A frame is one ASCII line: a direction mark (`>` host to fob, `<` fob to host), a 4-hex-digit sequence
number, a verb, `name=value` fields, then `*`, the CRC-16/CCITT-FALSE of everything before the `*`, and LF.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from devices.fob.errors import FobErrorCode, FobFrameError, FobLineTooLong
from devices.ocra import OcraError, OcraSuite

PROTOCOL_VERSION = 1
# Longest line either side sends or accepts, LF included; a real fob's receive buffer is about this size.
MAX_LINE_BYTES = 1024
REQUEST_MARK = b">"
REPLY_MARK = b"<"
# Sequence number of the ERROR BAD_FRAME reply to a line whose own sequence number could not be trusted.
UNTRUSTED_SEQ = 0
MAX_SEQ = 0xFFFF
# RFC 4226 §4 asks for at least 128 bits of shared secret; 64 bytes is SHA-512's block-size-sized key.
MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 64
# Session information up to S256 keeps a RESPOND line well inside MAX_LINE_BYTES.
MAX_SESSION_BYTES = 256
# Log level of fob traffic (below DEBUG: seen only when asked for); lines are logged through `redact`.
TRAFFIC = 5
# Serial numbers, model and firmware names: what a udev symlink name and a log line can carry as they are.
WORD_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")
_UINT64_LIMIT = 1 << 64

_SEQ = re.compile(rb"[0-9A-F]{4}")
_VERB = re.compile(r"[A-Z]{1,16}")
_NAME = re.compile(r"[a-z]{1,16}")
_VALUE = re.compile(r"[A-Za-z0-9._:,-]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_CHALLENGE = re.compile(r"[0-9A-Za-z]{1,64}")
_RESPONSE = re.compile(r"[0-9]{4,10}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128}")
_REDACT = re.compile(r"\b(secret|pin|response)=[^ *]*")


def checksum(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); binascii computes it in C."""
    return binascii.crc_hqx(data, 0xFFFF)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FobFrameError(message)


@dataclass(frozen=True)
class Frame:
    """One line of the protocol before its verb is interpreted."""

    mark: bytes
    seq: int
    verb: str
    fields: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check(self.mark in (REQUEST_MARK, REPLY_MARK), "unknown direction mark")
        _check(0 <= self.seq <= MAX_SEQ, "sequence number out of range")
        _check(_VERB.fullmatch(self.verb) is not None, "malformed verb")
        _check(len({name for name, _ in self.fields}) == len(self.fields), "a field appears twice")
        for name, value in self.fields:
            _check(_NAME.fullmatch(name) is not None, "malformed field name")
            _check(_VALUE.fullmatch(value) is not None, f"malformed value of field {name}")

    def encode(self) -> bytes:
        parts = [f"{self.seq:04X}", self.verb, *(f"{name}={value}" for name, value in self.fields)]
        head = self.mark + " ".join(parts).encode("ascii")
        line = head + b"*%04X\n" % checksum(head)
        _check(len(line) <= MAX_LINE_BYTES, "frame longer than MAX_LINE_BYTES")
        return line

    @classmethod
    def parse(cls, line: bytes) -> Frame:
        if len(line) > MAX_LINE_BYTES:
            raise FobLineTooLong(f"line longer than {MAX_LINE_BYTES} bytes")
        _check(line.endswith(b"\n"), "a frame ends with LF")
        head, star, crc = line[:-6], line[-6:-5], line[-5:-1]
        _check(star == b"*" and _SEQ.fullmatch(crc) is not None, "no checksum at the end of the line")
        _check(int(crc, 16) == checksum(head), "checksum mismatch")
        _check(head.isascii(), "non-ASCII byte in frame")
        parts = head[1:].decode("ascii").split(" ")
        _check(len(parts) >= 2 and _SEQ.fullmatch(parts[0].encode()) is not None, "malformed sequence number")
        pairs = [part.partition("=") for part in parts[2:]]
        _check(all(equals == "=" for _, equals, _ in pairs), "a field is not name=value")
        return cls(head[:1], int(parts[0], 16), parts[1], tuple((name, value) for name, _, value in pairs))


def _hex(value: str) -> bytes:
    _check(_LOWER_HEX.fullmatch(value) is not None, "a field is not lower-case hex")
    return bytes.fromhex(value)


def _uint(value: str) -> int:
    _check(_DECIMAL.fullmatch(value) is not None, "a field is not a decimal number")
    return int(value)


def _suite(value: str) -> OcraSuite:
    try:
        return OcraSuite.parse(value)
    except OcraError as err:
        raise FobFrameError("a field is not a valid OCRA suite") from err


def _code(value: str) -> FobErrorCode:
    _check(_uint(value) in set(FobErrorCode), "unknown error code")
    return FobErrorCode(int(value))


def _check_uint64(value: int | None, name: str) -> None:
    _check(value is None or 0 <= value < _UINT64_LIMIT, f"{name} out of range")


@dataclass(frozen=True)
class _Wire:
    """How one attribute of a message travels: its field name, and its conversions from and to text."""

    name: str
    attr: str
    decode: Callable[[str], Any] = str
    encode: Callable[[Any], str] = str
    required: bool = False


@dataclass(frozen=True)
class _Message:
    """encode() and parse() of one verb; a subclass lists its fields in WIRE and checks them in _validate."""

    MARK: ClassVar[bytes]
    VERB: ClassVar[str]
    WIRE: ClassVar[tuple[_Wire, ...]] = ()
    MIN_SEQ: ClassVar[int] = 1
    seq: int

    def __post_init__(self) -> None:
        _check(self.MIN_SEQ <= self.seq <= MAX_SEQ, "sequence number out of range")
        self._validate()

    def _validate(self) -> None:
        """Checks beyond the sequence number; a message that passes them encodes to a valid frame."""

    def _fields(self) -> list[tuple[str, str]]:
        values = [(wire, getattr(self, wire.attr)) for wire in self.WIRE]
        return [(wire.name, wire.encode(value)) for wire, value in values if value is not None]

    @classmethod
    def _from_fields(cls, seq: int, fields: Mapping[str, str]) -> Self:
        values: dict[str, Any] = {}
        for wire in cls.WIRE:
            text = fields.get(wire.name)
            _check(text is not None or not wire.required, f"field {wire.name} is missing")
            if text is not None:
                values[wire.attr] = wire.decode(text)
        return cls(seq, **values)

    def encode(self) -> bytes:
        return Frame(self.MARK, self.seq, self.VERB, tuple(self._fields())).encode()

    @classmethod
    def parse(cls, line: bytes) -> Self:
        return cls.from_frame(Frame.parse(line))

    @classmethod
    def from_frame(cls, frame: Frame) -> Self:
        _check(frame.mark == cls.MARK and frame.verb == cls.VERB, f"not a {cls.VERB} frame")
        return cls._from_fields(frame.seq, dict(frame.fields))


@dataclass(frozen=True)
class HelloRequest(_Message):
    MARK, VERB = REQUEST_MARK, "HELLO"


@dataclass(frozen=True)
class ProvisionRequest(_Message):
    """Write a suite and secret (and the PIN hash for a P suite) into a blank fob."""

    MARK, VERB = REQUEST_MARK, "PROVISION"
    WIRE = (
        _Wire("suite", "suite", _suite, required=True),
        _Wire("secret", "secret", _hex, bytes.hex, required=True),
        _Wire("pin", "pin_hash", _hex, bytes.hex),
    )
    suite: OcraSuite
    secret: bytes = field(repr=False)
    pin_hash: bytes | None = field(default=None, repr=False)

    def _validate(self) -> None:
        _check(MIN_SECRET_BYTES <= len(self.secret) <= MAX_SECRET_BYTES, "secret length out of range")
        _check(self.pin_hash is None or 1 <= len(self.pin_hash) <= 64, "PIN hash length out of range")


@dataclass(frozen=True)
class RespondRequest(_Message):
    """Compute the OCRA response to a challenge; counter, time step and session as the suite needs them."""

    MARK, VERB = REQUEST_MARK, "RESPOND"
    WIRE = (
        _Wire("challenge", "challenge", required=True),
        _Wire("counter", "counter", _uint),
        _Wire("time", "time_step", _uint),
        _Wire("session", "session_info", _hex, bytes.hex),
    )
    challenge: str
    counter: int | None = None
    time_step: int | None = None
    session_info: bytes | None = None

    def _validate(self) -> None:
        _check(_CHALLENGE.fullmatch(self.challenge) is not None, "malformed challenge")
        _check_uint64(self.counter, "counter")
        _check_uint64(self.time_step, "time step")
        size = None if self.session_info is None else len(self.session_info)
        _check(size is None or 1 <= size <= MAX_SESSION_BYTES, "session length out of range")


@dataclass(frozen=True)
class WipeRequest(_Message):
    """Erase the fob's secret; `serial` must be the fob's own serial number, as a confirmation."""

    MARK, VERB = REQUEST_MARK, "WIPE"
    WIRE = (_Wire("serial", "serial", required=True),)
    serial: str

    def _validate(self) -> None:
        _check(WORD_PATTERN.fullmatch(self.serial) is not None, "malformed serial number")


@dataclass(frozen=True)
class FobIdentity:
    """What HELLO tells: who the fob is and whether (and with which suite) it is provisioned."""

    version: int
    model: str
    serial: str
    firmware: str
    capabilities: tuple[str, ...]
    suite: OcraSuite | None = None
    counter: int | None = None  # the counter the next RESPOND uses, for a C suite

    def __post_init__(self) -> None:
        _check(0 < self.version <= 9999, "protocol version out of range")
        _check(len(self.capabilities) >= 1, "no capabilities")
        for word in (self.model, self.serial, self.firmware, *self.capabilities):
            _check(WORD_PATTERN.fullmatch(word) is not None, "malformed identity word")
        has_counter = self.suite is not None and self.suite.counter
        _check((self.counter is not None) == has_counter, "a counter goes with a C suite, and only then")
        _check_uint64(self.counter, "counter")

    @property
    def provisioned(self) -> bool:
        return self.suite is not None


@dataclass(frozen=True)
class IdentityReply(_Message):
    """Reply to HELLO; `state` on the wire repeats whether a suite is there, for people reading a trace."""

    MARK, VERB = REPLY_MARK, "IDENT"
    identity: FobIdentity

    def _fields(self) -> list[tuple[str, str]]:
        ident = self.identity
        fields = [("proto", str(ident.version)), ("model", ident.model), ("serial", ident.serial)]
        fields += [("fw", ident.firmware), ("caps", ",".join(ident.capabilities))]
        fields.append(("state", "provisioned" if ident.provisioned else "blank"))
        if ident.suite is not None:
            fields.append(("suite", str(ident.suite)))
        if ident.counter is not None:
            fields.append(("counter", str(ident.counter)))
        return fields

    @classmethod
    def _from_fields(cls, seq: int, fields: Mapping[str, str]) -> Self:
        def required(name: str) -> str:
            _check(name in fields, f"field {name} is missing")
            return fields[name]

        suite = _suite(fields["suite"]) if "suite" in fields else None
        _check(required("state") == ("provisioned" if suite else "blank"), "state and suite disagree")
        identity = FobIdentity(
            version=_uint(required("proto")),
            model=required("model"),
            serial=required("serial"),
            firmware=required("fw"),
            capabilities=tuple(required("caps").split(",")),
            suite=suite,
            counter=_uint(fields["counter"]) if "counter" in fields else None,
        )
        return cls(seq, identity)


@dataclass(frozen=True)
class DoneReply(_Message):
    """PROVISION or WIPE is committed to the fob's flash."""

    MARK, VERB = REPLY_MARK, "OK"


@dataclass(frozen=True)
class AnswerReply(_Message):
    MARK, VERB = REPLY_MARK, "ANSWER"
    WIRE = (_Wire("response", "response", required=True),)
    response: str = field(repr=False)

    def _validate(self) -> None:
        _check(_RESPONSE.fullmatch(self.response) is not None, "malformed response")


@dataclass(frozen=True)
class ErrorReply(_Message):
    """The command failed; `reason` on the wire is the code's name, for people reading a trace."""

    MARK, VERB, MIN_SEQ = REPLY_MARK, "ERROR", UNTRUSTED_SEQ
    WIRE = (_Wire("code", "code", _code, lambda code: str(code.value), required=True),)
    code: FobErrorCode

    def _validate(self) -> None:
        _check(isinstance(self.code, FobErrorCode), "unknown error code")

    def _fields(self) -> list[tuple[str, str]]:
        return [*super()._fields(), ("reason", self.code.name)]


Request = HelloRequest | ProvisionRequest | RespondRequest | WipeRequest
Reply = IdentityReply | DoneReply | AnswerReply | ErrorReply

_REQUESTS: dict[str, Callable[[Frame], Request]] = {
    cls.VERB: cls.from_frame for cls in (HelloRequest, ProvisionRequest, RespondRequest, WipeRequest)
}
_REPLIES: dict[str, Callable[[Frame], Reply]] = {
    cls.VERB: cls.from_frame for cls in (IdentityReply, DoneReply, AnswerReply, ErrorReply)
}


def request_from_frame(frame: Frame) -> Request:
    _check(frame.mark == REQUEST_MARK and frame.verb in _REQUESTS, "not a request")
    return _REQUESTS[frame.verb](frame)


def parse_request(line: bytes) -> Request:
    return request_from_frame(Frame.parse(line))


def parse_reply(line: bytes) -> Reply:
    frame = Frame.parse(line)
    _check(frame.mark == REPLY_MARK and frame.verb in _REPLIES, "not a reply")
    return _REPLIES[frame.verb](frame)


def redact(line: bytes) -> str:
    """A line for the traffic log: secret, PIN hash and response hidden, and the CRC (it leaks 16 bits)."""
    text = line[:MAX_LINE_BYTES].decode("ascii", "backslashreplace").rstrip("\n")
    redacted = _REDACT.sub(lambda match: f"{match.group(1)}=<redacted>", text)
    if redacted != text:
        redacted = re.sub(r"\*[0-9A-F]{4}$", "*<redacted>", redacted)
    return redacted


class FrameReader:
    """Splits a byte stream into candidate frames in bounded memory: a `mark` byte starts a frame (noise
    before it is dropped), LF ends one. A frame growing past MAX_LINE_BYTES is handed out cut to
    MAX_LINE_BYTES + 1 bytes, which `Frame.parse` rejects with `FobLineTooLong`; its rest is dropped."""

    def __init__(self, mark: bytes, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._mark = mark
        self._limit = max_line_bytes + 1
        self._line = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        position = 0
        while position < len(data):
            newline = data.find(b"\n", position)
            end = len(data) if newline < 0 else newline + 1
            chunk = data[position:end]
            start = chunk.rfind(self._mark)
            if start >= 0:
                self._line = bytearray(chunk[start : start + self._limit])
            elif self._line:
                self._line += chunk[: self._limit - len(self._line)]
            if len(self._line) >= self._limit or (newline >= 0 and self._line):
                lines.append(bytes(self._line))
                self._line = bytearray()
            position = end
        return lines
