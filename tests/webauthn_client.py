"""A security key in an API client's hands: the `SoftAuthenticator` driven by python-fido2's `Fido2Client`
(through `devices.fido.console`, the browser stand-in) against the HTTP API of a Flask test client.

    key = SecurityKey(client)
    token_id = key.enroll(accounts.enroll_session("alice"))
    session = key.login("alice")            # password, then the key's assertion
    session = key.passkey_login()           # usernameless (needs a discoverable credential and UV)

The lower-level steps (`begin_enrollment`, `create`, `sign`, `verify`) let a test tamper with what travels.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fido2.client import ClientDataCollector, DefaultClientDataCollector
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from devices.fido import console
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.accounts import PASSWORD, bearer

ORIGIN = "http://localhost:5000"  # the default TOKENWARD_PUBLIC_URL's origin


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def lax_browser(origin: str = ORIGIN) -> ClientDataCollector:
    """A client that reports `origin` and signs for whatever RP ID the options name (a phishing proxy's)."""
    return DefaultClientDataCollector(origin, verify=lambda rp_id, origin: True)


def ok(response: TestResponse, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.json)
    body: dict[str, Any] = response.json or {}
    return body


class SecurityKey:
    """One authenticator (a fresh `SoftAuthenticator`, or the one given, e.g. with a state file) and the
    origin its browser reports. `credential_ids` are the ids this key registered through `enroll`."""

    def __init__(
        self,
        client: FlaskClient,
        *,
        device: SoftAuthenticator | None = None,
        state_file: Path | None = None,
        origin: str = ORIGIN,
        pin: str | None = None,
        client_data: ClientDataCollector | None = None,
    ) -> None:
        self.client = client
        self.device = device if device is not None else SoftAuthenticator(state_file=state_file)
        self.origin = origin
        self.interaction = console.ConsoleInteraction(ask_pin=lambda: pin)
        self.client_data = client_data  # None: a browser at `origin`
        self.credential_ids: list[bytes] = []

    # --- registration --------------------------------------------------------------------------------------

    def begin_enrollment(self, session: Mapping[str, Any], *, description: str = "") -> dict[str, Any]:
        """`POST /tokens {"type": "webauthn"}`: the pending token with its creation options."""
        body: dict[str, Any] = {"type": "webauthn"}
        if description:
            body["description"] = description
        return ok(self.client.post("/api/v1/tokens", json=body, headers=bearer(dict(session))), 201)

    def create(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """navigator.credentials.create(): the RegistrationResponse JSON."""
        return console.register(
            self.device, self.origin, options, interaction=self.interaction, client_data=self.client_data
        )

    def activate(self, session: Mapping[str, Any], token_id: str, credential: Any) -> TestResponse:
        return self.client.post(
            f"/api/v1/tokens/{token_id}/activate",
            json={"credential": credential},
            headers=bearer(dict(session)),
        )

    def enroll(self, session: Mapping[str, Any], *, description: str = "") -> str:
        """Registers this key for the session's user; returns the active token's id."""
        pending = self.begin_enrollment(session, description=description)
        credential = self.create(pending)
        assert ok(self.activate(session, pending["id"], credential))["state"] == "active"
        self.credential_ids.append(unb64url(credential["rawId"]))
        return str(pending["id"])

    # --- authentication ------------------------------------------------------------------------------------

    def sign(
        self, challenge: Mapping[str, Any], *, allow: Sequence[bytes] | None = None, account: int = 0
    ) -> dict[str, Any]:
        """navigator.credentials.get() for a login/verify answer's (or bare) request options; `allow`
        replaces allowCredentials (an empty list makes it a usernameless request); `account` is the one the
        person picks when the key offers several (newest first)."""
        options = copy.deepcopy(dict(challenge.get("webauthn", challenge)))
        if allow is not None:
            public_key = options["publicKey"]
            public_key["allowCredentials"] = [{"type": "public-key", "id": b64url(i)} for i in allow]
            if not allow:
                del public_key["allowCredentials"]
        return console.authenticate(
            self.device,
            self.origin,
            options,
            interaction=self.interaction,
            client_data=self.client_data,
            select=lambda assertions: account,
        )

    def verify(
        self, transaction_id: str, credential: Any, headers: Mapping[str, str] | None = None
    ) -> TestResponse:
        return self.client.post(
            "/api/v1/verify",
            json={"transaction_id": transaction_id, "credential": credential},
            headers=dict(headers or {}),
        )

    def start_login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        challenge = ok(self.client.post("/api/v1/login", json={"username": username, "password": password}))
        assert challenge["status"] == "second_factor" and "webauthn" in challenge["methods"], challenge
        return challenge

    def start_passkey_login(self) -> dict[str, Any]:
        return ok(self.client.post("/api/v1/login/passkey", json={}))

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        """Password, then this key's assertion: the session."""
        challenge = self.start_login(username, password)
        return ok(self.verify(challenge["transaction_id"], self.sign(challenge)))

    def passkey_login(self) -> dict[str, Any]:
        """Usernameless: the key's discoverable credential names the user."""
        challenge = self.start_passkey_login()
        return ok(self.verify(challenge["transaction_id"], self.sign(challenge)))
