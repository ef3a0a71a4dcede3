"""`devices.fido.console`: the console's (and the HTTP tests') browser stand-in, on the soft authenticator,
with python-fido2's `Fido2Server` checking the JSON it produces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.webauthn import (
    AttestedCredentialData,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from devices.fido import console
from devices.fido.errors import CeremonyFailed, PinRequired, SecurityKeyUnavailable
from devices.fido.presence import Presence
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import ORIGIN, PIN, RelyingParty

PREFERRED = UserVerificationRequirement.PREFERRED
REQUIRED = UserVerificationRequirement.REQUIRED


def _creation(
    rp: RelyingParty,
    uv: UserVerificationRequirement = PREFERRED,
    exclude: list[AttestedCredentialData] | None = None,
) -> tuple[dict[str, Any], Any]:
    options, state = rp.server.register_begin(
        PublicKeyCredentialUserEntity(name="alice", id=b"alice-id", display_name="Alice"),
        credentials=exclude,
        resident_key_requirement=ResidentKeyRequirement.PREFERRED,
        user_verification=uv,
    )
    return json.loads(json.dumps(dict(options))), state  # as it travels over HTTP


def _enroll(rp: RelyingParty, device: SoftAuthenticator, **kwargs: Any) -> AttestedCredentialData:
    options, state = _creation(rp)
    auth_data = rp.server.register_complete(state, console.register(device, ORIGIN, options, **kwargs))
    assert auth_data.credential_data is not None
    return auth_data.credential_data


def test_register_and_authenticate_as_json(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    prompts: list[str] = []
    interaction = console.ConsoleInteraction(prompt=prompts.append)
    options, state = _creation(rp)
    registration = console.register(authenticator, ORIGIN, options, interaction=interaction)
    assert json.loads(json.dumps(registration)) == registration  # plain JSON
    assert registration["type"] == "public-key" and isinstance(registration["rawId"], str)
    credential = rp.server.register_complete(state, registration).credential_data
    assert credential is not None
    request, request_state = rp.server.authenticate_begin([credential], user_verification=PREFERRED)
    assertion = console.authenticate(authenticator, ORIGIN, dict(request), interaction=interaction)
    assert rp.server.authenticate_complete(request_state, [credential], assertion) == credential
    assert prompts == [console.TOUCH_PROMPT, console.TOUCH_PROMPT]


def test_options_without_the_public_key_wrapper(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    options, state = _creation(rp)
    rp.server.register_complete(state, console.register(authenticator, ORIGIN, options["publicKey"]))


def test_preferred_verification_goes_on_without_a_pin(rp: RelyingParty) -> None:
    """Browsers skip "preferred" UV on a key that could have a PIN but has none; so do we."""
    credential = _enroll(rp, SoftAuthenticator())
    assert credential.credential_id


def test_a_key_with_a_pin_asks_for_it(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    ClientPin(Ctap2(authenticator)).set_pin(PIN)
    options, _ = _creation(rp, REQUIRED)
    with pytest.raises(PinRequired, match="needs its PIN"):
        console.register(authenticator, ORIGIN, options)
    with pytest.raises(CeremonyFailed, match="wrong PIN") as wrong:
        console.register(
            authenticator, ORIGIN, options, interaction=console.ConsoleInteraction(ask_pin=lambda: "bad-pin")
        )
    assert wrong.value.ctap_code == CtapError.ERR.PIN_INVALID
    _enroll(rp, authenticator, interaction=console.ConsoleInteraction(ask_pin=lambda: PIN))


def test_typed_failures(rp: RelyingParty) -> None:
    denied = SoftAuthenticator(user_presence=lambda request: Presence.DENIED)
    options, _ = _creation(rp)
    with pytest.raises(CeremonyFailed, match="declined") as refused:
        console.register(denied, ORIGIN, options)
    assert refused.value.ctap_code == CtapError.ERR.OPERATION_DENIED

    device = SoftAuthenticator()
    credential = _enroll(rp, device)
    with pytest.raises(CeremonyFailed, match="already registered"):
        console.register(device, ORIGIN, _creation(rp, exclude=[credential])[0])
    request, _ = rp.server.authenticate_begin([credential])
    with pytest.raises(CeremonyFailed, match="no credential"):
        console.authenticate(SoftAuthenticator(), ORIGIN, dict(request))
    with pytest.raises(CeremonyFailed, match="malformed"):
        console.register(device, ORIGIN, {"publicKey": {"challenge": 5}})
    with pytest.raises(CeremonyFailed, match="no account"):
        console.authenticate(device, ORIGIN, dict(request), select=lambda assertions: 3)


def test_an_origin_the_client_refuses(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    options, _ = _creation(rp)
    with pytest.raises(CeremonyFailed, match="bad_request"):
        console.register(authenticator, "https://evil.example", options)


class _Unplugged(SoftAuthenticator):
    def call(self, cmd: int, data: bytes = b"", event: Any = None, on_keepalive: Any = None) -> bytes:
        raise OSError("device gone")


def test_an_unplugged_key(rp: RelyingParty) -> None:
    with pytest.raises(SecurityKeyUnavailable):
        console.register(_Unplugged(), ORIGIN, _creation(rp)[0])
