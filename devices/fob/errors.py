"""Errors of the fob transport and protocol.

Messages are safe to show and log: they never contain a secret, a PIN hash, a response or a raw frame.
"""

from __future__ import annotations

from enum import IntEnum


class FobErrorCode(IntEnum):
    """Numeric codes of the fob's ERROR replies (PROTOCOL.md, "Error codes")."""

    BAD_FRAME = 1  # checksum or framing wrong; the reply carries sequence number 0000
    BAD_REQUEST = 2  # unknown command, or a missing or malformed field
    UNSUPPORTED_SUITE = 3  # a valid OCRA suite this fob cannot run
    ALREADY_PROVISIONED = 4  # PROVISION on a fob that holds a secret: WIPE it first
    NOT_PROVISIONED = 5  # RESPOND on a blank fob
    BAD_INPUT = 6  # challenge, counter, time step, session or PIN hash does not fit the suite
    WRONG_SERIAL = 7  # WIPE confirmed with another fob's serial number
    COUNTER_EXHAUSTED = 8  # the counter reached 2**64 - 1
    STORAGE_FAILURE = 9  # the fob could not write its flash


class FobError(Exception):
    """Base of every fob failure."""


class FobPortError(FobError):
    """The serial port is missing, busy (opened by someone else) or went away (unplugged)."""


class FobTimeout(FobError):
    """The fob did not answer in time, after every retry."""


class FobFrameError(FobError):
    """A line is not a valid frame of the fob protocol (bad checksum, syntax or field)."""


class FobLineTooLong(FobFrameError):
    """A line exceeds the protocol's bound; it was discarded without reading it all."""


class FobIncompatible(FobError):
    """The fob speaks another version of the protocol."""


class FobRefused(FobError):
    """The fob answered with an ERROR reply; `code` says why."""

    def __init__(self, code: FobErrorCode) -> None:
        self.code = code
        super().__init__(f"the fob refused the command: {code.name} ({code.value})")


class FobAlreadyProvisioned(FobRefused):
    """PROVISION was refused because the fob already holds a secret."""


class FobNotProvisioned(FobRefused):
    """RESPOND was refused because the fob holds no secret."""


def refusal(code: FobErrorCode) -> FobRefused:
    """The exception for an ERROR reply, with a dedicated class where callers are expected to branch."""
    if code is FobErrorCode.ALREADY_PROVISIONED:
        return FobAlreadyProvisioned(code)
    if code is FobErrorCode.NOT_PROVISIONED:
        return FobNotProvisioned(code)
    return FobRefused(code)
