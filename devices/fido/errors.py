"""Errors of FIDO2 device access at the console.

The authenticator itself answers with CTAP status codes (`fido2.ctap.CtapError`), as a USB key does; these
classes are what the console shows a person. Messages are safe to print: never a PIN, key or credential.
"""

from __future__ import annotations

from fido2.ctap import CtapError


class FidoError(Exception):
    """Base of every failure of FIDO2 device access."""


class NoSecurityKey(FidoError):
    """No FIDO2 security key is attached (or none this user may open: see udev-rules/)."""


class SecurityKeyUnavailable(FidoError):
    """A security key is attached but could not be opened or stopped answering (unplugged, busy)."""


class SoftAuthenticatorStateError(FidoError):
    """The software authenticator's state file is unreadable or not one of ours."""


class CeremonyFailed(FidoError):
    """Registration or authentication with a key did not complete; `ctap_code` is the key's reason, if any."""

    def __init__(self, message: str, *, ctap_code: CtapError.ERR | None = None) -> None:
        super().__init__(message)
        self.ctap_code = ctap_code


class PinRequired(CeremonyFailed):
    """The key needs its PIN for this request and none was given."""
