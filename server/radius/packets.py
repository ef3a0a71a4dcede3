"""Access-Request in, Access-Accept/-Reject/-Challenge out: pyrad does the codec, this module the checks.

Every request must carry a valid Message-Authenticator (RFC 3579 section 3.2; the BlastRADIUS attack,
CVE-2024-3596, forges responses to requests without one), and every answer carries one as its first
attribute. Packets are bounded in size and attribute count before pyrad sees them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pyrad import packet as pyrad_packet
from pyrad.dictionary import Dictionary

# RFC 2865 section 3: at most 4096 octets.
MAX_PACKET_BYTES = 4096
# A PAP request from a real NAS has a dozen attributes; more is a flood or an attack.
MAX_ATTRIBUTES = 64
HEADER_BYTES = 20
USER_NAME, USER_PASSWORD, CHAP_PASSWORD, STATE, PROXY_STATE, EAP_MESSAGE, MESSAGE_AUTHENTICATOR = (
    1,
    2,
    3,
    24,
    33,
    79,
    80,
)
MAX_USER_NAME_BYTES = 64
MAX_PASSWORD_BYTES = 128  # RFC 2865 allows 128 octets


class Dropped(Exception):
    """A packet that gets no answer at all (RFC 2865: silently discarded), and why (a metrics label)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(Exception):
    """An authentic request that cannot be served (no PAP password, a bad name): Access-Reject."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@cache
def dictionary() -> Dictionary:
    with resources.as_file(resources.files("server.radius") / "dictionary") as path:
        return Dictionary(str(path))


def header(data: bytes) -> tuple[int, int, bytes]:
    """Code, identifier and authenticator of a datagram that can be a RADIUS packet; Dropped otherwise.
    Also bounds its size and attribute count (padding past the Length field is ignored, RFC 2865)."""
    if not HEADER_BYTES <= len(data) <= MAX_PACKET_BYTES:
        raise Dropped("malformed")
    code, identifier, length = struct.unpack("!BBH", data[:4])
    if not HEADER_BYTES <= length <= len(data):
        raise Dropped("malformed")
    offset, count = HEADER_BYTES, 0
    while offset < length:
        if offset + 2 > length or data[offset + 1] < 2 or offset + data[offset + 1] > length:
            raise Dropped("malformed")
        offset += data[offset + 1]
        count += 1
        if count > MAX_ATTRIBUTES:
            raise Dropped("too_many_attributes")
    return code, identifier, data[4:20]


@dataclass(frozen=True)
class AccessRequest:
    packet: pyrad_packet.AuthPacket
    username: str
    password: str
    state: bytes | None


def _single(packet: pyrad_packet.Packet, code: int) -> bytes | None:
    values: list[bytes] = packet.get(code, [])
    if len(values) > 1:
        raise Refused("repeated_attribute")
    return values[0] if values else None


def parse_access_request(data: bytes, *, secret: bytes, require_signature: bool = True) -> AccessRequest:
    """An authentic Access-Request (checked by its Message-Authenticator); Dropped for a forged, unsigned
    or malformed one, Refused for an authentic one that is not a PAP request Tokenward can answer.

    `require_signature=False` (a legacy NAS): an unsigned request is taken if it carries no Proxy-State,
    the attribute the BlastRADIUS attack needs (FreeRADIUS's `limit_proxy_state`)."""
    length = struct.unpack("!H", data[2:4])[0]
    try:
        packet = pyrad_packet.AuthPacket(packet=data[:length], secret=secret, dict=dictionary())
    except Exception as err:  # pyrad raises PacketError, struct.error, KeyError…: all mean a bad packet
        raise Dropped("malformed") from err
    signatures = packet.get(MESSAGE_AUTHENTICATOR, [])
    if not signatures and (require_signature or packet.get(PROXY_STATE)):
        raise Dropped("no_message_authenticator")
    if signatures:
        _check_signature(packet, signatures)
    if packet.get(CHAP_PASSWORD) or packet.get(EAP_MESSAGE):
        raise Refused("unsupported_authentication")
    raw_name, raw_password = _single(packet, USER_NAME), _single(packet, USER_PASSWORD)
    if raw_name is None or raw_password is None or not raw_name or len(raw_name) > MAX_USER_NAME_BYTES:
        raise Refused("malformed_request")
    if not raw_password or len(raw_password) % 16 or len(raw_password) > MAX_PASSWORD_BYTES:
        raise Refused("malformed_request")
    try:
        username = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("malformed_request") from None
    # Invalid UTF-8 after decryption is ignored by pyrad; the password then simply does not match.
    password = packet.PwDecrypt(raw_password)
    return AccessRequest(packet, username, password, _single(packet, STATE))


def decode_unchecked(data: bytes, *, secret: bytes) -> pyrad_packet.AuthPacket:
    """A packet `parse_access_request` already took apart once (to answer it with a reject)."""
    length = struct.unpack("!H", data[2:4])[0]
    return pyrad_packet.AuthPacket(packet=data[:length], secret=secret, dict=dictionary())


def _check_signature(packet: pyrad_packet.AuthPacket, signatures: list[bytes]) -> None:
    if len(signatures) != 1 or len(signatures[0]) != 16:
        raise Dropped("malformed")
    try:
        authentic = packet.verify_message_authenticator()
    except Exception as err:
        raise Dropped("malformed") from err
    if not authentic:
        raise Dropped("bad_message_authenticator")


def answer(
    request: pyrad_packet.AuthPacket,
    code: int,
    *,
    reply_message: str | None = None,
    state: bytes | None = None,
    class_value: bytes | None = None,
) -> bytes:
    """The encoded answer to `request`: Message-Authenticator first, Proxy-State copied by pyrad."""
    reply = request.CreateReply()
    reply.code = code
    reply.add_message_authenticator()
    if reply_message:
        encoded = reply_message.encode()
        for start in range(0, len(encoded), 253):  # RFC 2865: one attribute holds at most 253 octets
            reply.AddAttribute("Reply-Message", encoded[start : start + 253].decode(errors="ignore"))
    if state is not None:
        reply.AddAttribute("State", state)
    if class_value is not None:
        reply.AddAttribute("Class", class_value)
    data: bytes = reply.ReplyPacket()
    return data


ACCESS_REQUEST = pyrad_packet.AccessRequest
ACCESS_ACCEPT = pyrad_packet.AccessAccept
ACCESS_REJECT = pyrad_packet.AccessReject
ACCESS_CHALLENGE = pyrad_packet.AccessChallenge
