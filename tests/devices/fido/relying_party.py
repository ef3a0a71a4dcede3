"""A relying party for device tests: python-fido2's `Fido2Server` (no Flask) and `Fido2Client` driving a
`CtapDevice`, so the soft authenticator is checked by an implementation that is not ours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapDevice
from fido2.ctap2.pin import ClientPin
from fido2.server import Fido2Server
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorData,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

RP_ID = "localhost"
ORIGIN = "http://localhost:5000"
PIN = "4711-pin"


class Interaction(UserInteraction):
    """Counts touch prompts and answers PIN requests with `pin` (None declines)."""

    def __init__(self, pin: str | None = None) -> None:
        self.pin = pin
        self.touches = 0
        self.pin_requests = 0

    def prompt_up(self) -> None:
        self.touches += 1

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        self.pin_requests += 1
        return self.pin

    def request_uv(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> bool:
        return True


def fido2_client(device: CtapDevice, interaction: UserInteraction | None = None) -> Fido2Client:
    return Fido2Client(
        device,
        client_data_collector=DefaultClientDataCollector(ORIGIN),
        user_interaction=interaction or Interaction(),
    )


@dataclass
class RelyingParty:
    """python-fido2's `Fido2Server` for RP ID localhost, with the ceremonies as one call each."""

    server: Fido2Server = field(
        default_factory=lambda: Fido2Server(PublicKeyCredentialRpEntity(id=RP_ID, name="Test RP"))
    )

    def register(
        self,
        device: CtapDevice,
        *,
        user: bytes = b"user-1",
        name: str = "alice",
        resident_key: ResidentKeyRequirement = ResidentKeyRequirement.DISCOURAGED,
        user_verification: UserVerificationRequirement = UserVerificationRequirement.DISCOURAGED,
        exclude: Sequence[AttestedCredentialData] = (),
        interaction: UserInteraction | None = None,
    ) -> AuthenticatorData:
        options, state = self.server.register_begin(
            PublicKeyCredentialUserEntity(name=name, id=user, display_name=name.title()),
            credentials=list(exclude),
            resident_key_requirement=resident_key,
            user_verification=user_verification,
        )
        response = fido2_client(device, interaction).make_credential(options.public_key)
        return self.server.register_complete(state, response)

    def login(
        self,
        device: CtapDevice,
        credentials: Sequence[AttestedCredentialData],
        *,
        allow: bool = True,
        user_verification: UserVerificationRequirement = UserVerificationRequirement.DISCOURAGED,
        interaction: UserInteraction | None = None,
        choose: int = 0,
    ) -> tuple[AuthenticationResponse, AttestedCredentialData]:
        """An assertion checked against `credentials`; without `allow` the request has no allowCredentials
        (a usernameless login) and the key's `choose`-th account answers."""
        options, state = self.server.authenticate_begin(
            list(credentials) if allow else None, user_verification=user_verification
        )
        selection = fido2_client(device, interaction).get_assertion(options.public_key)
        response = selection.get_response(choose)
        matched = self.server.authenticate_complete(state, list(credentials), response)
        return response, matched


def credential_of(auth_data: AuthenticatorData) -> AttestedCredentialData:
    assert auth_data.credential_data is not None
    return auth_data.credential_data


def counter_of(response: AuthenticationResponse) -> int:
    value: Any = response.response.authenticator_data.counter
    return int(value)
