"""CTAP2 requests as the authenticator receives them: strict CBOR decoding and typed parameters.

Every malformed input ends in a `CtapError` with the code a real key would answer (INVALID_CBOR,
CBOR_UNEXPECTED_TYPE, MISSING_PARAMETER, ...), never in another exception: the request bytes are untrusted.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fido2 import cbor
from fido2.ctap import CtapError

__all__ = [
    "ClientPinRequest",
    "GetAssertionRequest",
    "MakeCredentialRequest",
    "decode_parameters",
]

ERR = CtapError.ERR
T = TypeVar("T")
CREDENTIAL_TYPE = "public-key"
MAX_USER_ID_BYTES = 64  # WebAuthn: a user handle is at most 64 bytes


def decode_parameters(body: bytes) -> dict[Any, Any]:
    """The CBOR map of a command's parameters. Only canonical CBOR (CTAP2's encoding) is accepted: decoding
    and re-encoding must give the same bytes, which also rejects what fido2's lenient decoder lets through
    (truncated strings, null and undefined read as false, duplicate keys)."""
    if not body:
        return {}
    try:
        value = cbor.decode(body)
        canonical = cbor.encode(value) == body
    except (ValueError, TypeError, KeyError, IndexError, struct.error, RecursionError) as err:
        raise CtapError(ERR.INVALID_CBOR) from err
    if not canonical:
        raise CtapError(ERR.INVALID_CBOR)
    if not isinstance(value, dict):
        raise CtapError(ERR.CBOR_UNEXPECTED_TYPE)
    return value


def _typed(value: Any, kind: type[T]) -> T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CtapError(ERR.CBOR_UNEXPECTED_TYPE)
    return value


def _optional(params: Mapping[Any, Any], key: Any, kind: type[T]) -> T | None:
    value = params.get(key)
    return None if value is None else _typed(value, kind)


def _required(params: Mapping[Any, Any], key: Any, kind: type[T]) -> T:
    value = _optional(params, key, kind)
    if value is None:
        raise CtapError(ERR.MISSING_PARAMETER)
    return value


def _options(params: Mapping[Any, Any], key: int) -> dict[str, bool]:
    options = _optional(params, key, dict) or {}
    for name, flag in options.items():
        _typed(name, str)
        _typed(flag, bool)
    return options


def _credential_ids(params: Mapping[Any, Any], key: int) -> tuple[bytes, ...]:
    """The ids of the public-key descriptors in an allow or exclude list; other types are skipped."""
    ids = []
    for entry in _optional(params, key, list) or []:
        descriptor = _typed(entry, dict)
        kind = _required(descriptor, "type", str)
        credential_id = _required(descriptor, "id", bytes)
        if kind == CREDENTIAL_TYPE:
            ids.append(credential_id)
    return tuple(ids)


@dataclass(frozen=True)
class PinUvAuth:
    """pinUvAuthParam and pinUvAuthProtocol of a request; `param` is None when the client sent none."""

    param: bytes | None
    protocol: int | None


@dataclass(frozen=True)
class UserEntity:
    id: bytes
    name: str | None
    display_name: str | None

    @classmethod
    def parse(cls, value: Any) -> UserEntity:
        user = _typed(value, dict)
        user_id = _required(user, "id", bytes)
        if len(user_id) > MAX_USER_ID_BYTES:
            raise CtapError(ERR.INVALID_PARAMETER)
        return cls(user_id, _optional(user, "name", str), _optional(user, "displayName", str))


@dataclass(frozen=True)
class MakeCredentialRequest:
    client_data_hash: bytes
    rp_id: str
    user: UserEntity
    algorithms: tuple[int, ...]  # of the public-key entries of pubKeyCredParams, in preference order
    exclude_ids: tuple[bytes, ...]
    options: dict[str, bool]
    auth: PinUvAuth

    @classmethod
    def parse(cls, params: Mapping[Any, Any]) -> MakeCredentialRequest:
        client_data_hash = _required(params, 1, bytes)
        rp_id = _required(_required(params, 2, dict), "id", str)
        user = UserEntity.parse(_required(params, 3, dict))
        algorithms = []
        for entry in _required(params, 4, list):
            parameters = _typed(entry, dict)
            algorithm = _required(parameters, "alg", int)
            if _required(parameters, "type", str) == CREDENTIAL_TYPE:
                algorithms.append(algorithm)
        _optional(params, 6, dict)  # extensions: none supported, ignored as CTAP allows
        if _optional(params, 10, int) is not None:
            raise CtapError(ERR.INVALID_PARAMETER)  # enterprise attestation is not supported
        return cls(
            client_data_hash=client_data_hash,
            rp_id=rp_id,
            user=user,
            algorithms=tuple(algorithms),
            exclude_ids=_credential_ids(params, 5),
            options=_options(params, 7),
            auth=PinUvAuth(_optional(params, 8, bytes), _optional(params, 9, int)),
        )


@dataclass(frozen=True)
class GetAssertionRequest:
    rp_id: str
    client_data_hash: bytes
    allow_ids: tuple[bytes, ...]
    options: dict[str, bool]
    auth: PinUvAuth

    @classmethod
    def parse(cls, params: Mapping[Any, Any]) -> GetAssertionRequest:
        rp_id = _required(params, 1, str)
        client_data_hash = _required(params, 2, bytes)
        _optional(params, 4, dict)  # extensions: ignored
        return cls(
            rp_id=rp_id,
            client_data_hash=client_data_hash,
            allow_ids=_credential_ids(params, 3),
            options=_options(params, 5),
            auth=PinUvAuth(_optional(params, 6, bytes), _optional(params, 7, int)),
        )


@dataclass(frozen=True)
class ClientPinRequest:
    protocol: int | None
    sub_command: int
    key_agreement: dict[Any, Any] | None
    pin_uv_auth_param: bytes | None
    new_pin_enc: bytes | None
    pin_hash_enc: bytes | None
    permissions: int | None
    rp_id: str | None

    @classmethod
    def parse(cls, params: Mapping[Any, Any]) -> ClientPinRequest:
        return cls(
            protocol=_optional(params, 1, int),
            sub_command=_required(params, 2, int),
            key_agreement=_optional(params, 3, dict),
            pin_uv_auth_param=_optional(params, 4, bytes),
            new_pin_enc=_optional(params, 5, bytes),
            pin_hash_enc=_optional(params, 6, bytes),
            permissions=_optional(params, 9, int),
            rp_id=_optional(params, 10, str),
        )
