"""clientPIN: python-fido2's `ClientPin` (protocols 1 and 2) against the authenticator's implementation."""

from __future__ import annotations

import pytest
from fido2.client import ClientError, PinRequiredError
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.webauthn import ResidentKeyRequirement, UserVerificationRequirement

from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import PIN, Interaction, RelyingParty, credential_of

ERR = CtapError.ERR
UV_REQUIRED = UserVerificationRequirement.REQUIRED


def _set_pin(device: SoftAuthenticator, pin: str = PIN) -> None:
    ClientPin(Ctap2(device)).set_pin(pin)


@pytest.mark.parametrize("protocol", [PinProtocolV1, PinProtocolV2], ids=["v1", "v2"])
def test_set_change_and_use_a_pin(
    rp: RelyingParty, authenticator: SoftAuthenticator, protocol: type[PinProtocolV1]
) -> None:
    pin = ClientPin(Ctap2(authenticator), protocol())
    pin.set_pin(PIN)
    assert Ctap2(authenticator).get_info().options["clientPin"] is True
    assert pin.get_pin_retries()[0] == 8
    pin.change_pin(PIN, "new-pin-1234")
    assert pin.get_pin_token("new-pin-1234", ClientPin.PERMISSION.GET_ASSERTION, "localhost")
    with pytest.raises(CtapError) as wrong:
        pin.get_pin_token(PIN)
    assert wrong.value.code == ERR.PIN_INVALID
    assert pin.get_pin_retries()[0] == 7


def test_a_pin_gives_user_verification(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    _set_pin(authenticator)
    interaction = Interaction(pin=PIN)
    registered = rp.register(
        authenticator,
        resident_key=ResidentKeyRequirement.REQUIRED,
        user_verification=UV_REQUIRED,
        interaction=interaction,
    )
    assert registered.is_user_verified()
    response, _ = rp.login(
        authenticator, [credential_of(registered)], user_verification=UV_REQUIRED, interaction=interaction
    )
    assert response.response.authenticator_data.is_user_verified()
    assert interaction.pin_requests == 2


def test_a_pin_is_required_once_set(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    _set_pin(authenticator)
    with pytest.raises(PinRequiredError):
        rp.register(authenticator, user_verification=UV_REQUIRED, interaction=Interaction(pin=None))
    with pytest.raises(ClientError) as wrong:
        rp.register(authenticator, user_verification=UV_REQUIRED, interaction=Interaction(pin="wrong-pin"))
    assert isinstance(wrong.value.cause, CtapError) and wrong.value.cause.code == ERR.PIN_INVALID
    assert authenticator.credentials() == []


def test_a_discoverable_credential_needs_verification_on_a_key_with_a_pin(
    rp: RelyingParty, authenticator: SoftAuthenticator
) -> None:
    """makeCredUvNotRqd covers non-discoverable credentials only (CTAP 2.1)."""
    _set_pin(authenticator)
    registered = rp.register(authenticator, interaction=Interaction(pin=None))  # non-discoverable: fine
    assert not registered.is_user_verified()
    refused = Ctap2(authenticator)
    with pytest.raises(CtapError) as error:
        refused.make_credential(
            b"\0" * 32,
            {"id": "localhost", "name": "RP"},
            {"id": b"u", "name": "u"},
            [{"type": "public-key", "alg": -7}],
            options={"rk": True},
        )
    assert error.value.code == ERR.PUAT_REQUIRED


def test_three_wrong_pins_block_until_power_cycle_and_eight_block_the_key(
    authenticator: SoftAuthenticator,
) -> None:
    _set_pin(authenticator)
    pin = ClientPin(Ctap2(authenticator))
    codes = []
    for _ in range(3):
        with pytest.raises(CtapError) as wrong:
            pin.get_pin_token("wrong-pin")
        codes.append(wrong.value.code)
    assert codes == [ERR.PIN_INVALID, ERR.PIN_INVALID, ERR.PIN_AUTH_BLOCKED]
    with pytest.raises(CtapError) as blocked:
        pin.get_pin_token(PIN)  # even the right PIN, until the key is re-plugged
    assert blocked.value.code == ERR.PIN_AUTH_BLOCKED
    assert pin.get_pin_retries()[0] == 5


def _raw_set_pin(device: SoftAuthenticator, padded: bytes) -> None:
    """setPIN with any padded PIN (python-fido2's client would refuse a short one before sending it)."""
    ctap, protocol = Ctap2(device), PinProtocolV2()
    pin = ClientPin(ctap, protocol)
    key_agreement, shared_secret = pin._get_shared_secret()
    new_pin_enc = protocol.encrypt(shared_secret, padded)
    ctap.client_pin(
        protocol.VERSION,
        ClientPin.CMD.SET_PIN,
        key_agreement=key_agreement,
        new_pin_enc=new_pin_enc,
        pin_uv_param=protocol.authenticate(shared_secret, new_pin_enc),
    )


@pytest.mark.parametrize(
    "padded",
    [b"abc".ljust(64, b"\0"), b"\xff\xfe\xfd\xfc".ljust(64, b"\0"), b"x" * 64, b"abcd".ljust(48, b"\0")],
    ids=["three-code-points", "not-utf8", "unterminated", "not-64-bytes"],
)
def test_pin_rules_hold_on_the_authenticator(authenticator: SoftAuthenticator, padded: bytes) -> None:
    with pytest.raises(CtapError) as refused:
        _raw_set_pin(authenticator, padded)
    assert refused.value.code in (ERR.PIN_POLICY_VIOLATION, ERR.INVALID_PARAMETER)
    assert Ctap2(authenticator).get_info().options["clientPin"] is False


def test_a_pin_is_set_once(authenticator: SoftAuthenticator) -> None:
    _raw_set_pin(authenticator, "päss".encode().ljust(64, b"\0"))  # four code points, five bytes
    pin = ClientPin(Ctap2(authenticator))
    assert pin.get_pin_token("päss")
    with pytest.raises(CtapError) as again:
        pin.set_pin(PIN)
    assert again.value.code == ERR.PIN_AUTH_INVALID


def test_reset_forgets_the_pin(authenticator: SoftAuthenticator) -> None:
    _set_pin(authenticator)
    Ctap2(authenticator).reset()
    assert Ctap2(authenticator).get_info().options["clientPin"] is False


def test_built_in_uv_token(rp: RelyingParty) -> None:
    fingerprint = SoftAuthenticator(builtin_uv=True)
    token = ClientPin(Ctap2(fingerprint)).get_uv_token(ClientPin.PERMISSION.GET_ASSERTION, "localhost")
    assert len(token) == 32
    assert ClientPin(Ctap2(fingerprint)).get_uv_retries() == 8
