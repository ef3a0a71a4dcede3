"""The fob protocol codec: round trips, garbage, corruption, framing, and the frames of PROTOCOL.md."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.fob.errors import FobErrorCode, FobFrameError, FobLineTooLong
from devices.fob.protocol import (
    MAX_LINE_BYTES,
    MAX_SEQ,
    MAX_SESSION_BYTES,
    REPLY_MARK,
    REQUEST_MARK,
    AnswerReply,
    DoneReply,
    ErrorReply,
    FobIdentity,
    Frame,
    FrameReader,
    HelloRequest,
    IdentityReply,
    ProvisionRequest,
    RespondRequest,
    WipeRequest,
    checksum,
    parse_reply,
    parse_request,
    redact,
)
from devices.ocra import OcraSuite, TimeStep

PROTOCOL_MD = Path(__file__).parents[3] / "devices" / "fob" / "PROTOCOL.md"

seqs = st.integers(1, MAX_SEQ)
uint64s = st.integers(0, (1 << 64) - 1)
words = st.from_regex(r"[A-Za-z0-9._-]{1,32}", fullmatch=True)
suites = st.builds(
    OcraSuite,
    hash_name=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.sampled_from([0, 4, 6, 8, 10]),
    question_format=st.sampled_from(["A", "N", "H"]),
    question_length=st.integers(4, 64),
    counter=st.booleans(),
    pin_hash_name=st.none() | st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    session_length=st.none() | st.integers(0, 999),
    time_step=st.none() | st.builds(TimeStep, st.integers(1, 59), st.sampled_from(["S", "M"])),
)


@st.composite
def identities(draw: st.DrawFn) -> FobIdentity:
    suite = draw(st.none() | suites)
    counter = draw(uint64s) if suite is not None and suite.counter else None
    capabilities = tuple(draw(st.lists(words, min_size=1, max_size=6)))
    return FobIdentity(
        draw(st.integers(1, 9999)), draw(words), draw(words), draw(words), capabilities, suite, counter
    )


requests = st.one_of(
    st.builds(HelloRequest, seqs),
    st.builds(
        ProvisionRequest,
        seqs,
        suites,
        st.binary(min_size=16, max_size=64),
        st.none() | st.binary(min_size=1, max_size=64),
    ),
    st.builds(
        RespondRequest,
        seqs,
        st.from_regex(r"[0-9A-Za-z]{1,64}", fullmatch=True),
        st.none() | uint64s,
        st.none() | uint64s,
        st.none() | st.binary(min_size=1, max_size=MAX_SESSION_BYTES),
    ),
    st.builds(WipeRequest, seqs, words),
)
replies = st.one_of(
    st.builds(IdentityReply, seqs, identities()),
    st.builds(DoneReply, seqs),
    st.builds(AnswerReply, seqs, st.from_regex(r"[0-9]{4,10}|[0-9a-f]{40}", fullmatch=True)),
    st.builds(ErrorReply, st.integers(0, MAX_SEQ), st.sampled_from(FobErrorCode)),
)


@given(requests)
def test_every_request_round_trips(request: HelloRequest) -> None:
    line = request.encode()
    assert len(line) <= MAX_LINE_BYTES and line.startswith(REQUEST_MARK) and line.endswith(b"\n")
    assert parse_request(line) == request
    assert type(request).parse(line) == request


@given(replies)
def test_every_reply_round_trips(reply: DoneReply) -> None:
    line = reply.encode()
    assert len(line) <= MAX_LINE_BYTES and line.startswith(REPLY_MARK)
    assert parse_reply(line) == reply
    assert type(reply).parse(line) == reply


def _garbage() -> st.SearchStrategy[bytes]:
    frames = st.one_of(requests, replies).map(lambda message: message.encode())
    return st.one_of(
        st.binary(max_size=MAX_LINE_BYTES + 200),
        st.text(alphabet=" *=<>0123456789ABCDEFabcdefz\n:-,.", max_size=200).map(str.encode),
        frames.flatmap(lambda line: st.integers(0, len(line)).map(lambda cut: line[:cut] + line[cut + 1 :])),
        frames.map(lambda line: line[:-6] + b" x=1" + line[-6:]),
    )


@given(_garbage())
def test_any_bytes_give_a_message_or_a_frame_error(line: bytes) -> None:
    for parse in (Frame.parse, parse_request, parse_reply, HelloRequest.parse, IdentityReply.parse):
        with contextlib.suppress(FobFrameError):
            parse(line)


@given(st.one_of(requests, replies), st.data())
def test_any_changed_byte_is_caught(message: HelloRequest, data: st.DataObject) -> None:
    line = bytearray(message.encode())
    index = data.draw(st.integers(0, len(line) - 1))
    line[index] = data.draw(st.integers(0, 255).filter(lambda value: value != line[index]))
    with pytest.raises(FobFrameError):
        parse_request(bytes(line)) if message.encode().startswith(REQUEST_MARK) else parse_reply(bytes(line))


@given(st.one_of(requests, replies), st.data())
def test_any_truncation_is_caught(message: HelloRequest, data: st.DataObject) -> None:
    line = message.encode()
    cut = data.draw(st.integers(0, len(line) - 1))
    with pytest.raises(FobFrameError):
        Frame.parse(line[:cut])


def test_an_oversize_line_is_its_own_error() -> None:
    with pytest.raises(FobLineTooLong):
        Frame.parse(b">0001 HELLO " + b"x" * MAX_LINE_BYTES + b"*0000\n")


def test_a_request_is_not_a_reply() -> None:
    with pytest.raises(FobFrameError):
        parse_reply(HelloRequest(1).encode())
    with pytest.raises(FobFrameError):
        parse_request(DoneReply(1).encode())
    with pytest.raises(FobFrameError):
        WipeRequest.parse(HelloRequest(1).encode())


def test_unknown_fields_are_ignored_and_unknown_codes_refused() -> None:
    assert parse_request(Frame(REQUEST_MARK, 7, "HELLO", (("future", "1"),)).encode()) == HelloRequest(7)
    with pytest.raises(FobFrameError):
        parse_reply(Frame(REPLY_MARK, 7, "ERROR", (("code", "999"),)).encode())
    with pytest.raises(FobFrameError):
        parse_request(Frame(REQUEST_MARK, 7, "DANCE").encode())


@pytest.mark.parametrize(
    "fields",
    [
        "proto=1 model=M serial=S fw=1 caps=ocra1 state=provisioned",  # no suite
        "proto=1 model=M serial=S fw=1 caps=ocra1 state=blank suite=OCRA-1:HOTP-SHA1-6:QN08",
        "proto=1 model=M serial=S fw=1 caps=ocra1 state=provisioned suite=OCRA-1:HOTP-SHA1-6:C-QN08",
        "proto=1 model=M serial=S fw=1 caps=ocra1 state=blank counter=1",
        "proto=1 model=M serial=S caps=ocra1 state=blank",
        "proto=0 model=M serial=S fw=1 caps=ocra1 state=blank",
    ],
)
def test_inconsistent_identities_are_refused(fields: str) -> None:
    pairs = tuple((name, value) for name, _, value in (pair.partition("=") for pair in fields.split()))
    with pytest.raises(FobFrameError):
        parse_reply(Frame(REPLY_MARK, 1, "IDENT", pairs).encode())


@pytest.mark.parametrize(
    "build",
    [
        lambda: HelloRequest(0),
        lambda: HelloRequest(MAX_SEQ + 1),
        lambda: ProvisionRequest(1, OcraSuite.parse("OCRA-1:HOTP-SHA1-6:QN08"), bytes(15)),
        lambda: RespondRequest(1, "12 34"),
        lambda: RespondRequest(1, "1234", counter=1 << 64),
        lambda: RespondRequest(1, "1234", session_info=bytes(MAX_SESSION_BYTES + 1)),
        lambda: WipeRequest(1, "no/slash"),
        lambda: AnswerReply(1, "12"),
    ],
)
def test_invalid_messages_cannot_be_built(build: Callable[[], object]) -> None:
    with pytest.raises(FobFrameError):
        build()


def test_checksum_is_crc16_ccitt_false() -> None:
    assert checksum(b"123456789") == 0x29B1


def _documented_frames() -> list[bytes]:
    text = PROTOCOL_MD.read_text()
    return [
        line.encode() + b"\n" for line in re.findall(r"^[<>][0-9A-F]{4} [^\n]*\*[0-9A-F]{4}$", text, re.M)
    ]


def test_protocol_md_frames_are_valid() -> None:
    frames = _documented_frames()
    assert len(frames) >= 8
    for line in frames:
        if line.startswith(REQUEST_MARK):
            parse_request(line)
        else:
            parse_reply(line)


def test_protocol_md_worked_example() -> None:
    """The byte-level walk-through in PROTOCOL.md: the CRC of the HELLO request it spells out."""
    text = PROTOCOL_MD.read_text()
    assert ">0001 HELLO*EB49" in text
    assert checksum(b">0001 HELLO") == 0xEB49
    assert HelloRequest(1).encode() == b">0001 HELLO*EB49\n"


def test_redaction_hides_secrets_responses_and_their_checksums() -> None:
    secret = bytes(range(16, 48))
    suite = OcraSuite.parse("OCRA-1:HOTP-SHA1-6:QN08-PSHA1")
    provision = ProvisionRequest(1, suite, secret, bytes(range(20))).encode()
    answer = AnswerReply(2, "493817").encode()
    logged = redact(provision) + redact(answer)
    assert secret.hex() not in logged and bytes(range(20)).hex() not in logged and "493817" not in logged
    assert provision[-5:-1].decode() not in logged and answer[-5:-1].decode() not in logged
    assert redact(HelloRequest(1).encode()) == ">0001 HELLO*EB49"


@given(st.lists(st.one_of(requests, replies), min_size=1, max_size=5), st.data())
def test_reader_splits_a_stream_however_it_arrives(messages: list[HelloRequest], data: st.DataObject) -> None:
    stream = b"".join(message.encode() for message in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    readers = {REQUEST_MARK: FrameReader(REQUEST_MARK), REPLY_MARK: FrameReader(REPLY_MARK)}
    seen: dict[bytes, list[bytes]] = {REQUEST_MARK: [], REPLY_MARK: []}
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        for mark, reader in readers.items():
            seen[mark] += reader.feed(stream[start:end])
    for mark in (REQUEST_MARK, REPLY_MARK):
        assert seen[mark] == [m.encode() for m in messages if m.encode().startswith(mark)]


@given(
    st.binary(max_size=3000).map(lambda noise: noise.replace(b"<", b"")),
    st.sampled_from([b"", b"<", b"<00", b"<0001 ANSWER resp"]),  # a frame cut short by a reset
    replies,
)
def test_reader_resynchronises_after_noise(noise: bytes, cut_frame: bytes, reply: DoneReply) -> None:
    reader = FrameReader(REPLY_MARK)
    lines = reader.feed(noise + cut_frame) + reader.feed(reply.encode())
    assert all(len(line) <= MAX_LINE_BYTES + 1 for line in lines)
    assert lines[-1] == reply.encode()


def test_reader_cuts_an_oversize_frame_and_recovers() -> None:
    reader = FrameReader(REPLY_MARK)
    oversize = b"<0001 ANSWER response=" + b"1" * 5000 + b"*0000\n"
    lines = reader.feed(oversize[:3000]) + reader.feed(oversize[3000:] + DoneReply(2).encode())
    assert len(lines) == 2 and len(lines[0]) == MAX_LINE_BYTES + 1
    with pytest.raises(FobLineTooLong):
        parse_reply(lines[0])
    assert parse_reply(lines[1]) == DoneReply(2)


def test_frame_errors_never_quote_the_line() -> None:
    secret = bytes(range(100, 132))
    line = bytearray(ProvisionRequest(9, OcraSuite.parse("OCRA-1:HOTP-SHA1-6:QN08"), secret).encode())
    line[-3] ^= 0x01  # checksum mismatch
    with pytest.raises(FobFrameError) as caught:
        parse_request(bytes(line))
    assert secret.hex()[:8] not in str(caught.value)
