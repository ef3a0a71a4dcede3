"""Untrusted bytes into `call()`: every input gets a CTAP status byte (or a CTAPHID-level `CtapError`), never
another exception, and the key keeps working afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.hid import CTAPHID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import RelyingParty, credential_of

CTAP2_COMMANDS = [0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x0B, 0x0A, 0x0C, 0x40, 0x41, 0xFF]
KNOWN_STATUSES = {int(code) for code in CtapError.ERR}

# python-fido2's encoder has no null; null and undefined are in the byte-level cases below.
cbor_values = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=80)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.integers(-5, 12) | st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
# Plausible requests: the parameter numbers and member names the commands read, with values of any type.
MEMBER_NAMES = ["id", "name", "displayName", "type", "alg", "rk", "uv", "up"]
plausible = st.dictionaries(
    st.integers(1, 10),
    cbor_values
    | st.dictionaries(st.sampled_from(MEMBER_NAMES), cbor_values, max_size=4)
    | st.lists(st.dictionaries(st.sampled_from(MEMBER_NAMES), cbor_values, max_size=3), max_size=3),
    max_size=10,
)

_shared = SoftAuthenticator()  # hypothesis runs many examples; state changes are part of what is fuzzed


def _status(answer: bytes) -> int:
    assert isinstance(answer, bytes) and answer, answer
    status = answer[0]
    assert status == 0 or status in KNOWN_STATUSES, hex(status)
    if status == 0 and len(answer) > 1:
        assert isinstance(cbor.decode(answer[1:]), dict)
    return status


def _call(data: bytes) -> None:
    try:
        _status(_shared.call(CTAPHID.CBOR, data))
    except CtapError as err:  # transport level: empty message
        assert err.code == CtapError.ERR.INVALID_LENGTH


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _call(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CTAP2_COMMANDS), cbor_values)
def test_any_cbor_value_as_parameters(command: int, value: Any) -> None:
    _call(bytes([command]) + cbor.encode(value))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0x01, 0x02, 0x06]), plausible)
def test_plausible_but_wrong_requests(command: int, params: dict[int, Any]) -> None:
    _call(bytes([command]) + cbor.encode(params))


VALID_REQUESTS: dict[int, dict[Any, Any]] = {
    0x01: {  # makeCredential
        1: b"\0" * 32,
        2: {"id": "localhost", "name": "RP"},
        3: {"id": b"user", "name": "alice", "displayName": "Alice"},
        4: [{"type": "public-key", "alg": -7}],
        5: [{"type": "public-key", "id": b"\1" * 32}],
        7: {"rk": True},
    },
    0x02: {1: "localhost", 2: b"\0" * 32, 3: [{"type": "public-key", "id": b"\1" * 32}], 5: {"up": True}},
    0x06: {1: 2, 2: 5, 3: {1: 2, 3: -25, -1: 1, -2: b"\0" * 32, -3: b"\0" * 32}, 6: b"\0" * 16},
}


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[int, dict[Any, Any]]:
    """A well-formed request with one member replaced by any value, or removed: deep in the parsers."""
    command = draw(st.sampled_from(sorted(VALID_REQUESTS)))
    params = dict(VALID_REQUESTS[command])
    key = draw(st.sampled_from(sorted(params, key=str)))
    if draw(st.booleans()):
        del params[key]
    elif isinstance(params[key], dict) and draw(st.booleans()):
        inner = dict(params[key])
        inner[draw(st.sampled_from(sorted(inner, key=str)))] = draw(cbor_values)
        params[key] = inner
    else:
        params[key] = draw(cbor_values)
    return command, params


@settings(max_examples=300, deadline=None)
@given(mutated_requests())
def test_one_member_wrong(request: tuple[int, dict[Any, Any]]) -> None:
    command, params = request
    _call(bytes([command]) + cbor.encode(params))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CTAP2_COMMANDS), st.binary(max_size=40))
def test_truncated_and_padded_cbor(command: int, junk: bytes) -> None:
    body = cbor.encode({1: b"\0" * 32, 2: {"id": "localhost"}, 3: {"id": b"u"}, 4: [{"type": "public-key"}]})
    _call(bytes([command]) + body[: len(junk)] + junk)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x01\xa1", CtapError.ERR.INVALID_CBOR),  # truncated map
        (b"\x01\xa2\x01\x00\x01\x00", CtapError.ERR.INVALID_CBOR),  # duplicate key
        (b"\x01\x18\x05", CtapError.ERR.INVALID_CBOR),  # non-canonical integer
        (b"\x01\x80", CtapError.ERR.CBOR_UNEXPECTED_TYPE),  # a list, not a map
        (b"\x01\xa1\x01\xf6", CtapError.ERR.INVALID_CBOR),  # null (fido2's decoder reads false)
        (b"\x01\xa1\x01\xf7", CtapError.ERR.INVALID_CBOR),  # undefined
        (b"\x01\xa1\x01\xf9\x00\x00", CtapError.ERR.INVALID_CBOR),  # a half-precision float
        (b"\x01\xa0", CtapError.ERR.MISSING_PARAMETER),
        (b"\x42", CtapError.ERR.INVALID_COMMAND),
        (b"\x02" + b"\xa0" * 1300, CtapError.ERR.REQUEST_TOO_LARGE),
        (b"\x08", CtapError.ERR.NOT_ALLOWED),  # getNextAssertion with nothing pending
    ],
    ids=[
        "truncated",
        "duplicate",
        "non-canonical",
        "list",
        "null",
        "undefined",
        "float",
        "empty-map",
        "unknown",
        "too-large",
        "next",
    ],
)
def test_typed_refusals(body: bytes, code: CtapError.ERR) -> None:
    assert SoftAuthenticator().call(CTAPHID.CBOR, body)[0] == code


def test_deeply_nested_cbor() -> None:
    nested = b"\x81" * 5000 + b"\x00"
    assert SoftAuthenticator().call(CTAPHID.CBOR, b"\x01" + nested[:1199])[0] != 0
    assert SoftAuthenticator().call(CTAPHID.CBOR, b"\x01" + b"\xa1\x01" + b"\x81" * 1000 + b"\x00")[0] != 0


def test_the_key_still_works_after_the_fuzzing(rp: RelyingParty) -> None:
    device = SoftAuthenticator()
    for garbage in (b"\x01\xff", b"\x02\xa1\x01\x40", b"\x06\xa1\x02\x03", b"\x01" + b"\xa0"):
        device.call(CTAPHID.CBOR, garbage)
    credential = credential_of(rp.register(device))
    rp.login(device, [credential])
    assert Ctap2(device).get_info().versions
