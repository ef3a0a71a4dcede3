"""Hostile datagrams fed straight to the RADIUS request handler (hypothesis): nothing breaks it (its
internal-error drop counter stays put), nothing is accepted, and a retransmission gets the same answer."""

from __future__ import annotations

import base64
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad import packet as pyrad_packet

from server.config import RateLimits, Settings
from server.migrations import upgrade_schema
from server.radius import metrics, packets
from server.radius.handler import RequestHandler
from server.radius.server import build_runtime
from server.services.audit import Actor
from server.services.radius_clients import add_radius_client
from server.services.seed_import import import_seed_file
from server.services.users import create_user
from tests.e2e.serve_process import CHEAP_PASSWORD_HASHING

SECRET = "hostile-test-secret-0123"
SEED_HEX = "3132333435363738393031323334353637383930"
HOTP = pyotp.HOTP(base64.b32encode(bytes.fromhex(SEED_HEX)).decode())
# Codes far ahead in the look-ahead window are used by the flip test: a correct one is in every request.
FLIP_COUNTER = 5
NAS = ("127.0.0.1", 40000)


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RequestHandler]:
    tmp: Path = tmp_path_factory.mktemp("radius")
    config = Settings(
        instance_dir=tmp / "instance",
        database_url=f"sqlite:///{tmp / 'tokenward.db'}",
        rate_limits=RateLimits.parse("off"),
        encryption_key=secrets.token_hex(32),
        **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
    )
    rt, sessions = build_runtime(config)
    session = sessions()
    upgrade_schema(session.get_bind())  # type: ignore[arg-type]
    create_user(session, rt, username="alice", password="correct horse battery", actor=Actor.console())
    for serial, name in (("H1", "alice"), ("H2", "bob")):
        if name != "alice":
            create_user(session, rt, username=name, password="correct horse battery", actor=Actor.console())
        seed = f"{serial}, {SEED_HEX}, hotp\n".encode()
        import_seed_file(session, rt, data=seed, source="seed.csv", username=name, actor=Actor.console())
    add_radius_client(session, rt, name="vpn", address="127.0.0.1/32", secret=SECRET, actor=Actor.console())
    session.close()
    yield RequestHandler(sessions, rt, limiter=None)


def _internal_errors() -> float:
    return metrics.RADIUS_DROPPED.labels(reason="internal_error")._value.get()


def _signed(attributes: list[tuple[int, bytes]], identifier: int = 7) -> bytes:
    """An Access-Request with these raw attributes and a valid Message-Authenticator."""
    request = pyrad_packet.AuthPacket(id=identifier, secret=SECRET.encode(), dict=packets.dictionary())
    for code, value in attributes:
        request.setdefault(code, []).append(value)
    request.add_message_authenticator()
    return bytes(request.RequestPacket())


def _not_accepted(reply: bytes | None) -> None:
    assert reply is None or reply[0] != packets.ACCESS_ACCEPT


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000))
def test_any_bytes_are_dropped_or_refused(handler: RequestHandler, data: bytes) -> None:
    before = _internal_errors()
    _not_accepted(handler.handle(data, NAS))
    assert _internal_errors() == before


_attribute = st.tuples(st.integers(0, 255), st.binary(min_size=0, max_size=40))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attributes=st.lists(_attribute, max_size=80), identifier=st.integers(0, 255))
def test_signed_requests_with_any_attributes_are_never_accepted(
    handler: RequestHandler, attributes: list[tuple[int, bytes]], identifier: int
) -> None:
    before = _internal_errors()
    try:
        data = _signed([(code, value) for code, value in attributes if code != 80], identifier)
    except (ValueError, struct.error, TypeError):
        return  # pyrad would not encode it; the raw-bytes test covers such packets
    _not_accepted(handler.handle(data, NAS))
    assert _internal_errors() == before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 200), value=st.integers(0, 255))
def test_a_flipped_byte_in_a_signed_request_is_never_accepted(
    handler: RequestHandler, position: int, value: int
) -> None:
    """The unflipped request would be accepted (the right password and a valid code)."""
    request = pyrad_packet.AuthPacket(id=9, secret=SECRET.encode(), dict=packets.dictionary())
    request.AddAttribute("User-Name", "alice")
    request["User-Password"] = request.PwCrypt("correct horse battery" + HOTP.at(FLIP_COUNTER))
    request.add_message_authenticator()
    data = bytearray(request.RequestPacket())
    if data[position % len(data)] == value:
        return
    data[position % len(data)] = value
    before = _internal_errors()
    _not_accepted(handler.handle(bytes(data), NAS))
    assert _internal_errors() == before


def test_a_retransmission_gets_the_same_answer_without_a_second_check(handler: RequestHandler) -> None:
    request = pyrad_packet.AuthPacket(id=11, secret=SECRET.encode(), dict=packets.dictionary())
    request.AddAttribute("User-Name", "bob")  # bob's token: the flip test keeps alice's counter
    request["User-Password"] = request.PwCrypt("correct horse battery" + HOTP.at(0))
    request.add_message_authenticator()
    data = bytes(request.RequestPacket())
    duplicates = metrics.RADIUS_DUPLICATES._value.get()
    first = handler.handle(data, NAS)
    assert first is not None and first[0] == packets.ACCESS_ACCEPT
    # a second verification of the same code would be refused (the counter moved on): the cache answers
    assert handler.handle(data, NAS) == first
    assert metrics.RADIUS_DUPLICATES._value.get() == duplicates + 1
    reply = request.CreateReply(packet=first)
    assert request.VerifyReply(reply, first, enforce_ma=True)  # signed, Message-Authenticator first
    assert first[20] == packets.MESSAGE_AUTHENTICATOR
