"""The Tokenward fob: wire protocol (PROTOCOL.md), `SerialFob` driver, discovery.

The emulator is imported from `devices.fob.emulator` (it needs POSIX pseudo-terminals; the rest does not).
"""

from devices.fob.discovery import AttachedFob, attached_fobs
from devices.fob.driver import SerialFob
from devices.fob.errors import (
    FobAlreadyProvisioned,
    FobError,
    FobErrorCode,
    FobFrameError,
    FobIncompatible,
    FobLineTooLong,
    FobNotProvisioned,
    FobPortError,
    FobRefused,
    FobTimeout,
)
from devices.fob.protocol import FobIdentity

__all__ = [
    "AttachedFob",
    "FobAlreadyProvisioned",
    "FobError",
    "FobErrorCode",
    "FobFrameError",
    "FobIdentity",
    "FobIncompatible",
    "FobLineTooLong",
    "FobNotProvisioned",
    "FobPortError",
    "FobRefused",
    "FobTimeout",
    "SerialFob",
    "attached_fobs",
]
