"""authenticatorClientPIN on the authenticator's side: set and change the PIN, hand out pinUvAuthTokens, and
check the pinUvAuthParam of makeCredential and getAssertion against the current token.

Simplifications against CTAP 2.1, none of which a client can use to skip a check: a token keeps its
permissions until the next token replaces it (no usage timer, no clearing after first use).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2.ctap import CtapError

from devices.fido.credential_store import MAX_PIN_RETRIES, AuthenticatorState
from devices.fido.ctap_requests import ClientPinRequest
from devices.fido.pin_crypto import PROTOCOLS, PinUvProtocolV1, cose_key_agreement

__all__ = ["ClientPinAuthority", "Permission"]

ERR = CtapError.ERR
MIN_PIN_LENGTH = 4  # Unicode code points, CTAP's minimum
MAX_PIN_BYTES = 63
_PADDED_PIN_BYTES = 64
_PIN_HASH_BYTES = 16
_MAX_CONSECUTIVE_MISMATCHES = 3  # then PIN_AUTH_BLOCKED until a power cycle (a new instance)
_TOKEN_BYTES = 32


class SubCommand(IntEnum):
    GET_PIN_RETRIES = 0x01
    GET_KEY_AGREEMENT = 0x02
    SET_PIN = 0x03
    CHANGE_PIN = 0x04
    GET_PIN_TOKEN = 0x05
    GET_TOKEN_USING_UV = 0x06
    GET_UV_RETRIES = 0x07
    GET_TOKEN_USING_PIN = 0x09


class Permission(IntFlag):
    MAKE_CREDENTIAL = 0x01
    GET_ASSERTION = 0x02


@dataclass(frozen=True)
class _Token:
    value: bytes
    permissions: Permission
    rp_id: str | None


class ClientPinAuthority:
    """The PIN state of one power-up: the keyAgreement key and the current token live only in memory;
    PIN hash and retries live in `state`, made durable by `save` after each change."""

    def __init__(self, state: AuthenticatorState, *, save: Callable[[], None], builtin_uv: bool) -> None:
        self._state = state
        self._save = save
        self._builtin_uv = builtin_uv
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._token: _Token | None = None
        self._mismatches = 0

    def power_cycle(self) -> None:
        """A fresh keyAgreement key, no token (what unplugging the key does); used after a reset."""
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._token = None
        self._mismatches = 0

    def handle(self, request: ClientPinRequest) -> dict[int, Any]:
        """Runs one authenticatorClientPIN subcommand; returns the response map."""
        match request.sub_command:
            case SubCommand.GET_PIN_RETRIES:
                return {0x03: self._state.pin_retries}
            case SubCommand.GET_KEY_AGREEMENT:
                self._protocol(request.protocol)
                return {0x01: cose_key_agreement(self._key)}
            case SubCommand.SET_PIN:
                self._set_pin(request)
                return {}
            case SubCommand.CHANGE_PIN:
                self._change_pin(request)
                return {}
            case SubCommand.GET_PIN_TOKEN:
                return self._token_using_pin(request, Permission.MAKE_CREDENTIAL | Permission.GET_ASSERTION)
            case SubCommand.GET_TOKEN_USING_PIN:
                return self._token_using_pin(request, self._permissions(request))
            case SubCommand.GET_TOKEN_USING_UV if self._builtin_uv:
                return self._token_using_uv(request)
            case SubCommand.GET_UV_RETRIES if self._builtin_uv:
                return {0x05: MAX_PIN_RETRIES}
        raise CtapError(ERR.INVALID_SUBCOMMAND)

    def verify(
        self,
        param: bytes,
        version: int | None,
        *,
        client_data_hash: bytes,
        permission: Permission,
        rp_id: str,
    ) -> None:
        """Checks a request's pinUvAuthParam: made with the current token, which allows this command for
        this RP. A token not yet bound to an RP is bound to this one."""
        protocol = self._protocol(version)
        token = self._token
        if token is None or not protocol.verify(token.value, client_data_hash, param):
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if permission not in token.permissions or token.rp_id not in (None, rp_id):
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if token.rp_id is None:
            self._token = _Token(token.value, token.permissions, rp_id)

    @property
    def pin_is_set(self) -> bool:
        return self._state.pin_hash is not None

    def _protocol(self, version: int | None) -> PinUvProtocolV1:
        if version is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        protocol = PROTOCOLS.get(version)
        if protocol is None:
            raise CtapError(ERR.INVALID_PARAMETER)
        return protocol

    def _shared_secret(self, request: ClientPinRequest) -> tuple[PinUvProtocolV1, bytes]:
        protocol = self._protocol(request.protocol)
        if request.key_agreement is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        return protocol, protocol.shared_secret(self._key, request.key_agreement)

    def _set_pin(self, request: ClientPinRequest) -> None:
        protocol, shared = self._shared_secret(request)
        if request.pin_uv_auth_param is None or request.new_pin_enc is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        if self.pin_is_set:
            raise CtapError(ERR.PIN_AUTH_INVALID)  # CTAP 2.1: setPIN on a key with a PIN
        if not protocol.verify(shared, request.new_pin_enc, request.pin_uv_auth_param):
            raise CtapError(ERR.PIN_AUTH_INVALID)
        self._store_pin(protocol.decrypt(shared, request.new_pin_enc))

    def _change_pin(self, request: ClientPinRequest) -> None:
        protocol, shared = self._shared_secret(request)
        param, new_pin_enc, pin_hash_enc = (
            request.pin_uv_auth_param,
            request.new_pin_enc,
            request.pin_hash_enc,
        )
        if param is None or new_pin_enc is None or pin_hash_enc is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        if not self.pin_is_set:
            raise CtapError(ERR.PIN_NOT_SET)
        if not protocol.verify(shared, new_pin_enc + pin_hash_enc, param):
            raise CtapError(ERR.PIN_AUTH_INVALID)
        self._check_pin(protocol, shared, pin_hash_enc)
        self._store_pin(protocol.decrypt(shared, new_pin_enc))

    def _store_pin(self, padded: bytes) -> None:
        if len(padded) != _PADDED_PIN_BYTES:
            raise CtapError(ERR.INVALID_PARAMETER)
        pin = padded.split(b"\0", 1)[0]
        try:
            code_points = len(pin.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise CtapError(ERR.PIN_POLICY_VIOLATION) from err
        if code_points < MIN_PIN_LENGTH or len(pin) > MAX_PIN_BYTES:
            raise CtapError(ERR.PIN_POLICY_VIOLATION)
        self._state.pin_hash = hashlib.sha256(pin).digest()[:_PIN_HASH_BYTES]
        self._state.pin_retries = MAX_PIN_RETRIES
        self._token = None
        self._save()

    def _check_pin(self, protocol: PinUvProtocolV1, shared: bytes, pin_hash_enc: bytes) -> None:
        """Spends a retry, then compares; a mismatch also renews the keyAgreement key (CTAP 2.1, 6.5.5.5)."""
        expected = self._state.pin_hash
        if expected is None:
            raise CtapError(ERR.PIN_NOT_SET)
        if self._state.pin_retries == 0:
            raise CtapError(ERR.PIN_BLOCKED)
        if self._mismatches >= _MAX_CONSECUTIVE_MISMATCHES:
            raise CtapError(ERR.PIN_AUTH_BLOCKED)
        self._state.pin_retries -= 1
        self._save()
        if not hmac.compare_digest(protocol.decrypt(shared, pin_hash_enc), expected):
            self._key = ec.generate_private_key(ec.SECP256R1())
            self._mismatches += 1
            if self._state.pin_retries == 0:
                raise CtapError(ERR.PIN_BLOCKED)
            if self._mismatches >= _MAX_CONSECUTIVE_MISMATCHES:
                raise CtapError(ERR.PIN_AUTH_BLOCKED)
            raise CtapError(ERR.PIN_INVALID)
        self._mismatches = 0
        self._state.pin_retries = MAX_PIN_RETRIES
        self._save()

    def _permissions(self, request: ClientPinRequest) -> Permission:
        if request.permissions is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        if request.permissions == 0:
            raise CtapError(ERR.INVALID_PARAMETER)
        if request.permissions & ~(Permission.MAKE_CREDENTIAL | Permission.GET_ASSERTION):
            raise CtapError(ERR.UNAUTHORIZED_PERMISSION)  # credMgmt, bioEnroll, ...: not supported
        return Permission(request.permissions)

    def _token_using_pin(self, request: ClientPinRequest, permissions: Permission) -> dict[int, Any]:
        protocol, shared = self._shared_secret(request)
        if request.pin_hash_enc is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        self._check_pin(protocol, shared, request.pin_hash_enc)
        return self._issue_token(protocol, shared, permissions, request.rp_id)

    def _token_using_uv(self, request: ClientPinRequest) -> dict[int, Any]:
        """Built-in user verification (a simulated fingerprint match) always succeeds."""
        protocol, shared = self._shared_secret(request)
        return self._issue_token(protocol, shared, self._permissions(request), request.rp_id)

    def _issue_token(
        self, protocol: PinUvProtocolV1, shared: bytes, permissions: Permission, rp_id: str | None
    ) -> dict[int, Any]:
        self._token = _Token(secrets.token_bytes(_TOKEN_BYTES), permissions, rp_id)
        return {0x02: protocol.encrypt(shared, self._token.value)}
