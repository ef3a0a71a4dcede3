"""`SoftAuthenticator`: a FIDO2 security key in software, behind python-fido2's `CtapDevice` interface.

`Ctap2(device)` and `Fido2Client(device, ...)` drive it exactly as they drive a USB key through
`fido2.hid.CtapHidDevice`: CTAPHID CBOR messages in, a status byte and a CBOR map out. It speaks CTAP 2.1 for
ES256 credentials: getInfo, makeCredential (excludeList, discoverable credentials, "packed" or "none"
attestation), getAssertion and getNextAssertion (allowList, a signature counter per credential, UP and UV
flags), clientPIN (protocols 1 and 2, PIN and pinUvAuthTokens), reset and selection.

It is an emulator for tests and demonstrations: its "secure element" is a Python object, and with a state
file its private keys are on disk (see `credential_store`). Never enroll it where a real key is required.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

from fido2 import cbor
from fido2.cose import ES256
from fido2.ctap import STATUS, CtapDevice, CtapError
from fido2.ctap2.base import Ctap2
from fido2.hid import CAPABILITY, CTAPHID
from fido2.webauthn import Aaguid

from devices.fido.attestation import AttestationFormat, AttestationIdentity
from devices.fido.client_pin import MIN_PIN_LENGTH, ClientPinAuthority
from devices.fido.credential_store import MAX_PIN_RETRIES, AuthenticatorState, read_state, write_state
from devices.fido.ctap_commands import MAX_SIGN_COUNT, AuthenticatorProfile, CredentialCommands
from devices.fido.ctap_requests import (
    ClientPinRequest,
    GetAssertionRequest,
    MakeCredentialRequest,
    decode_parameters,
)
from devices.fido.pin_crypto import PROTOCOLS
from devices.fido.presence import (
    Interaction,
    PresenceCheck,
    PresenceRequest,
    always_present,
    require_presence,
)

__all__ = ["SOFT_AUTHENTICATOR_AAGUID", "CredentialInfo", "SoftAuthenticator"]

ERR = CtapError.ERR
CMD = Ctap2.CMD
SOFT_AUTHENTICATOR_AAGUID = Aaguid.parse("7f9d00b9-7575-4975-a454-f8ea60a39ce0")  # Tokenward's own, random
MAX_MSG_SIZE = 1200  # what most USB keys announce
MAX_CREDS_IN_LIST = 8
MAX_CREDENTIAL_ID_LENGTH = 128
FIRMWARE_VERSION = 1


@dataclass(frozen=True)
class CredentialInfo:
    """What a test may inspect about a stored credential (never its private key)."""

    credential_id: bytes
    rp_id: str
    user_id: bytes
    user_name: str | None
    discoverable: bool
    sign_count: int


class SoftAuthenticator(CtapDevice):
    """A software FIDO2 authenticator (for tests and emulation: see the module docstring).

    `builtin_uv` simulates a fingerprint reader (user verification without a PIN); `user_presence` answers
    every touch request; `state_file` makes the key outlive the process (JSON holding the private keys,
    mode 0600); `attestation_identity` turns "packed" self attestation into basic attestation.
    """

    def __init__(
        self,
        *,
        aaguid: bytes = SOFT_AUTHENTICATOR_AAGUID,
        builtin_uv: bool = False,
        user_presence: PresenceCheck = always_present,
        state_file: Path | None = None,
        attestation: AttestationFormat = "packed",
        attestation_identity: AttestationIdentity | None = None,
    ) -> None:
        self._profile = AuthenticatorProfile(Aaguid(aaguid), builtin_uv, attestation, attestation_identity)
        self._user_presence = user_presence
        self._state_file = state_file
        self._state = read_state(state_file) if state_file is not None else AuthenticatorState()
        self._pin = ClientPinAuthority(self._state, save=self._save, builtin_uv=builtin_uv)
        self._commands = CredentialCommands(
            self._state, profile=self._profile, pin=self._pin, presence=user_presence, save=self._save
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SoftAuthenticator(aaguid={self._profile.aaguid}, state_file={self._state_file})"

    @property
    def aaguid(self) -> Aaguid:
        return self._profile.aaguid

    @property
    def product_name(self) -> str:
        return "Tokenward software authenticator"

    @property
    def capabilities(self) -> int:
        return CAPABILITY.CBOR | CAPABILITY.WINK | CAPABILITY.NMSG  # CTAP2 only: no U2F (CTAPHID_MSG)

    @classmethod
    def list_devices(cls) -> Iterator[SoftAuthenticator]:
        """None: a software authenticator is constructed, never discovered."""
        return iter(())

    def close(self) -> None:
        """Nothing to release: every change is already in the state file."""

    def call(
        self,
        cmd: int,
        data: bytes = b"",
        event: Event | None = None,
        on_keepalive: Callable[[STATUS], None] | None = None,
    ) -> bytes:
        """One CTAPHID message. Transport faults raise `CtapError` (as a CTAPHID_ERROR reply does on USB);
        CTAP2 errors come back in the response's status byte, which `Ctap2` raises as `CtapError`."""
        if cmd == CTAPHID.PING:
            return bytes(data)
        if cmd == CTAPHID.WINK:
            return b""
        if cmd != CTAPHID.CBOR:
            raise CtapError(ERR.INVALID_COMMAND)
        if not data:
            raise CtapError(ERR.INVALID_LENGTH)
        with self._lock:
            try:
                response = self._dispatch(data[0], data[1:], Interaction(event, on_keepalive))
            except CtapError as err:
                return bytes([err.code])
        return b"\x00" + (cbor.encode(response) if response else b"")

    # --- for tests: inspection and tampering ---------------------------------------------------------------

    def credentials(self) -> list[CredentialInfo]:
        with self._lock:
            return [
                CredentialInfo(c.credential_id, c.rp_id, c.user_id, c.user_name, c.discoverable, c.sign_count)
                for c in self._state.credentials
            ]

    def set_sign_count(self, credential_id: bytes, value: int) -> None:
        """Overwrite a credential's stored signature counter: its next assertion reports `value + 1`.
        Setting it below what a relying party last saw simulates a cloned key."""
        if not 0 <= value < MAX_SIGN_COUNT:
            raise ValueError("a signature counter is a 32-bit value")
        with self._lock:
            credential = next((c for c in self._state.credentials if c.credential_id == credential_id), None)
            if credential is None:
                raise KeyError("no such credential")
            credential.sign_count = value
            self._save()

    def clear_credentials(self) -> None:
        """Forget every credential (the PIN stays): the key no longer answers for any account."""
        with self._lock:
            self._state.credentials.clear()
            self._commands.end_assertion_sequence()
            self._save()

    # --- CTAP2 ---------------------------------------------------------------------------------------------

    def _dispatch(self, command: int, body: bytes, interaction: Interaction) -> Mapping[int, Any]:
        if command == CMD.GET_NEXT_ASSERTION:
            return self._commands.get_next_assertion()
        self._commands.end_assertion_sequence()
        if len(body) + 1 > MAX_MSG_SIZE:
            raise CtapError(ERR.REQUEST_TOO_LARGE)
        if command in (CMD.RESET, CMD.SELECTION):
            name = "reset" if command == CMD.RESET else "selection"
            require_presence(self._user_presence, PresenceRequest(name, None), interaction)
            if command == CMD.RESET:
                self._reset()
            return {}
        if command not in (CMD.GET_INFO, CMD.MAKE_CREDENTIAL, CMD.GET_ASSERTION, CMD.CLIENT_PIN):
            raise CtapError(ERR.INVALID_COMMAND)
        params = decode_parameters(body)
        if command == CMD.GET_INFO:
            return self._info()
        if command == CMD.CLIENT_PIN:
            return self._pin.handle(ClientPinRequest.parse(params))
        if command == CMD.MAKE_CREDENTIAL:
            return self._commands.make_credential(MakeCredentialRequest.parse(params), interaction)
        return self._commands.get_assertion(GetAssertionRequest.parse(params), interaction)

    def _info(self) -> dict[int, Any]:
        """authenticatorGetInfo (CTAP 2.1, 6.4), keyed by the member numbers `fido2.ctap2.Info` parses."""
        options = {
            "rk": True,
            "up": True,
            "clientPin": self._pin.pin_is_set,
            "pinUvAuthToken": True,
            "makeCredUvNotRqd": True,
        }
        if self._profile.builtin_uv:
            options["uv"] = True
        return {
            0x01: ["FIDO_2_0", "FIDO_2_1"],
            0x03: bytes(self._profile.aaguid),
            0x04: options,
            0x05: MAX_MSG_SIZE,
            0x06: list(PROTOCOLS),
            0x07: MAX_CREDS_IN_LIST,
            0x08: MAX_CREDENTIAL_ID_LENGTH,
            0x09: ["usb"],
            0x0A: [{"alg": ES256.ALGORITHM, "type": "public-key"}],
            0x0D: MIN_PIN_LENGTH,
            0x0E: FIRMWARE_VERSION,
        }

    def _reset(self) -> None:
        """authenticatorReset: every credential and the PIN are gone, as after a power cycle."""
        self._state.credentials.clear()
        self._state.pin_hash = None
        self._state.pin_retries = MAX_PIN_RETRIES
        self._pin.power_cycle()
        self._save()

    def _save(self) -> None:
        if self._state_file is not None:
            write_state(self._state_file, self._state)
