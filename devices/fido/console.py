"""Driving a security key as a browser would, for the admin console and for tests over HTTP.

`register` takes the creation options the server produced (``{"publicKey": {...}}``, base64url fields) and
returns the registration response JSON the server expects; `authenticate` does the same for request options.
Both run python-fido2's `Fido2Client` on any `CtapDevice`: a USB key or the `SoftAuthenticator`.

One browser habit is copied on purpose: python-fido2 2.2 refuses userVerification "preferred" on a key that
supports a PIN but has none set; browsers then go on without user verification, and so do we.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from fido2.client import (
    ClientDataCollector,
    ClientError,
    DefaultClientDataCollector,
    Fido2Client,
    PinRequiredError,
    UserInteraction,
)
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2.base import AssertionResponse, Info
from fido2.ctap2.pin import ClientPin
from fido2.hid import ConnectionFailure
from fido2.webauthn import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions,
    UserVerificationRequirement,
)

from devices.fido.errors import CeremonyFailed, PinRequired, SecurityKeyUnavailable

__all__ = ["TOUCH_PROMPT", "UV_PROMPT", "ConsoleInteraction", "authenticate", "register"]

TOUCH_PROMPT = "Touch your security key"
UV_PROMPT = "Verify yourself on your security key"
ERR = CtapError.ERR
Options = TypeVar("Options", PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions)
AccountChoice = Callable[[Sequence[AssertionResponse]], int]

_REASONS = {
    ERR.CREDENTIAL_EXCLUDED: "this security key is already registered",
    ERR.NO_CREDENTIALS: "this security key holds no credential for this account",
    ERR.OPERATION_DENIED: "the request was declined on the security key",
    ERR.USER_ACTION_TIMEOUT: "the security key was not touched in time",
    ERR.ACTION_TIMEOUT: "the security key was not touched in time",
    ERR.KEEPALIVE_CANCEL: "the request was cancelled",
    ERR.PIN_INVALID: "wrong PIN",
    ERR.PIN_BLOCKED: "the security key's PIN is blocked: the key must be reset",
    ERR.PIN_AUTH_BLOCKED: "too many wrong PINs: unplug the security key and plug it in again",
    ERR.PIN_NOT_SET: "user verification is required but the security key has no PIN set",
    ERR.PIN_POLICY_VIOLATION: "the PIN does not meet the security key's rules",
    ERR.UNSUPPORTED_ALGORITHM: "the security key supports none of the server's algorithms",
}


class ConsoleInteraction(UserInteraction):
    """Tells the person what the key waits for (`prompt`) and asks for the key's PIN (`ask_pin`; None
    declines). The console prints and reads a hidden line; tests pass a list's append and a constant."""

    def __init__(
        self,
        *,
        prompt: Callable[[str], None] = lambda message: None,
        ask_pin: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._prompt = prompt
        self._ask_pin = ask_pin

    def prompt_up(self) -> None:
        self._prompt(TOUCH_PROMPT)

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        return self._ask_pin()

    def request_uv(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> bool:
        self._prompt(UV_PROMPT)
        return True


def register(
    device: CtapDevice,
    origin: str,
    options: Mapping[str, Any],
    *,
    interaction: UserInteraction | None = None,
    client_data: ClientDataCollector | None = None,
) -> dict[str, Any]:
    """navigator.credentials.create() on `device`: the RegistrationResponse JSON (WebAuthn L3 toJSON).
    `client_data` replaces the browser's own collector (which reports `origin` and checks the RP ID)."""
    creation = _parse(PublicKeyCredentialCreationOptions, options)
    client = _client(device, client_data or DefaultClientDataCollector(origin), interaction)
    selection = creation.authenticator_selection or AuthenticatorSelectionCriteria()
    if _skip_preferred_uv(client.info, selection.user_verification):
        discouraged = dataclasses.replace(
            selection, user_verification=UserVerificationRequirement.DISCOURAGED
        )
        creation = dataclasses.replace(creation, authenticator_selection=discouraged)
    with _ceremony():
        response = client.make_credential(creation)
    return _plain_json(response)


def authenticate(
    device: CtapDevice,
    origin: str,
    options: Mapping[str, Any],
    *,
    interaction: UserInteraction | None = None,
    select: AccountChoice | None = None,
    client_data: ClientDataCollector | None = None,
) -> dict[str, Any]:
    """navigator.credentials.get() on `device`: the AuthenticationResponse JSON. When the key offers several
    accounts (a usernameless request), `select` picks one by index; the default takes the first, which the
    key lists most recently created first."""
    request = _parse(PublicKeyCredentialRequestOptions, options)
    client = _client(device, client_data or DefaultClientDataCollector(origin), interaction)
    if _skip_preferred_uv(client.info, request.user_verification):
        request = dataclasses.replace(request, user_verification=UserVerificationRequirement.DISCOURAGED)
    with _ceremony():
        selection = client.get_assertion(request)
        assertions = selection.get_assertions()
        index = select(assertions) if select is not None else 0
        if not 0 <= index < len(assertions):
            raise CeremonyFailed("no account was chosen")
        response = selection.get_response(index)
    return _plain_json(response)


def _parse(kind: type[Options], options: Mapping[str, Any]) -> Options:
    """Options as the server sends them, with or without the {"publicKey": ...} wrapper."""
    inner = options.get("publicKey", options)
    try:
        return kind.from_dict(inner)  # type: ignore[no-any-return]
    except (KeyError, TypeError, ValueError) as err:
        raise CeremonyFailed("the server's WebAuthn options are malformed") from err


def _client(
    device: CtapDevice, client_data: ClientDataCollector, interaction: UserInteraction | None
) -> Fido2Client:
    try:
        return Fido2Client(
            device,
            client_data_collector=client_data,
            user_interaction=interaction if interaction is not None else UserInteraction(),
        )
    except (OSError, ConnectionFailure) as err:
        raise SecurityKeyUnavailable("the security key stopped answering") from err


def _skip_preferred_uv(info: Info, requirement: UserVerificationRequirement | None) -> bool:
    """True when the RP merely prefers user verification and the key could do it but is not set up for it."""
    if requirement not in (None, UserVerificationRequirement.PREFERRED):
        return False
    names = ("uv", "clientPin", "bioEnroll")
    supported = any(name in info.options for name in names)
    configured = any(info.options.get(name) for name in names)
    return supported and not configured


@contextmanager
def _ceremony() -> Iterator[None]:
    """Turns python-fido2's client errors into ours, with a reason a person can act on."""
    try:
        yield
    except PinRequiredError as err:
        raise PinRequired("the security key needs its PIN") from err
    except ClientError as err:
        raise _failure(err) from err
    except CtapError as err:  # from the device itself, outside the client's own translation
        raise _failure(ClientError(ClientError.ERR.OTHER_ERROR, err)) from err  # type: ignore[no-untyped-call]
    except (OSError, ConnectionFailure) as err:
        raise SecurityKeyUnavailable("the security key stopped answering") from err


def _failure(error: ClientError) -> CeremonyFailed:
    cause = error.cause
    if isinstance(cause, CtapError):
        reason = _REASONS.get(cause.code, f"the security key refused the request: {cause.code.name}")
        return CeremonyFailed(reason, ctap_code=cause.code)
    detail = f": {cause}" if cause else ""
    return CeremonyFailed(f"the request could not be completed ({error.code.name.lower()}){detail}")


def _plain_json(response: Mapping[str, Any]) -> dict[str, Any]:
    """dict(response) is the WebAuthn JSON already; the round trip leaves only plain JSON values in it."""
    result: dict[str, Any] = json.loads(json.dumps(dict(response)))
    return result
