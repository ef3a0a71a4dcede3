"""Which security keys may register: the AAGUID allow-list and attestation trust anchors
(TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST, TOKENWARD_WEBAUTHN_ATTESTATION, TOKENWARD_WEBAUTHN_TRUST_ANCHORS)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask

from devices.fido.attestation import issue_attestation_identity, make_test_ca
from devices.fido.soft_authenticator import SOFT_AUTHENTICATOR_AAGUID, SoftAuthenticator
from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from tests.accounts import Accounts, dispose_app
from tests.webauthn_client import SecurityKey, ok

OTHER_MODEL = "cb69481e-8ff7-4039-93ec-0a2729a154a8"

AppFactory = Callable[..., Accounts]


@pytest.fixture
def accounts_with(settings: Settings, clock: FrozenClock) -> Iterator[AppFactory]:
    """Accounts on an app whose settings differ from the default ones by `overrides`."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Accounts:
        app = create_app(dataclasses.replace(settings, **overrides), clock=clock)
        apps.append(app)
        return Accounts(app, app.test_client(), clock)

    yield make
    for app in apps:
        dispose_app(app)


def _register(accounts: Accounts, device: SoftAuthenticator, username: str = "alice") -> tuple[int, Any]:
    accounts.create_user(username)
    session = accounts.enroll_session(username)
    key = SecurityKey(accounts.client, device=device)
    pending = key.begin_enrollment(session)
    response = key.activate(session, pending["id"], key.create(pending))
    return response.status_code, response.json


def _pem(path: Path, certificate: x509.Certificate) -> str:
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return str(path)


def _attested_key(ca: tuple[Any, x509.Certificate], aaguid: str | None = None) -> SoftAuthenticator:
    """A soft authenticator of model `aaguid` whose packed attestation chains to `ca`."""
    model = bytes.fromhex(aaguid.replace("-", "")) if aaguid else bytes(SOFT_AUTHENTICATOR_AAGUID)
    identity = issue_attestation_identity(aaguid=model, ca_key=ca[0], ca_certificate=ca[1])
    return SoftAuthenticator(aaguid=model, attestation_identity=identity)


def _allow_list(accounts_with: AppFactory, tmp_path: Path, *models: str) -> tuple[Accounts, Any]:
    ca = make_test_ca()
    accounts = accounts_with(
        webauthn_aaguid_allowlist=models,
        webauthn_attestation="direct",
        webauthn_trust_anchors=_pem(tmp_path / "ca.pem", ca[1]),
    )
    return accounts, ca


def test_an_allow_list_refuses_other_models(accounts_with: AppFactory, tmp_path: Path) -> None:
    accounts, ca = _allow_list(accounts_with, tmp_path, OTHER_MODEL)
    status, body = _register(accounts, _attested_key(ca))
    assert (status, body["code"]) == (403, "authenticator_not_allowed")
    assert accounts.login("alice")["status"] == "enroll"
    status, _ = _register(accounts, _attested_key(ca, OTHER_MODEL), "bob")
    assert status == 200


def test_an_allow_list_naming_the_model_accepts_it(accounts_with: AppFactory, tmp_path: Path) -> None:
    accounts, ca = _allow_list(accounts_with, tmp_path, str(SOFT_AUTHENTICATOR_AAGUID).upper(), OTHER_MODEL)
    assert _register(accounts, _attested_key(ca))[0] == 200


@pytest.mark.parametrize("attestation", ["none", "packed"], ids=["attestation-none", "self-attestation"])
def test_an_allowed_model_claimed_without_a_trusted_chain_is_refused(
    accounts_with: AppFactory, tmp_path: Path, attestation: Any
) -> None:
    accounts, _ = _allow_list(accounts_with, tmp_path, OTHER_MODEL)
    claims = SoftAuthenticator(aaguid=bytes.fromhex(OTHER_MODEL.replace("-", "")), attestation=attestation)
    status, body = _register(accounts, claims)
    assert (status, body["code"]) == (403, "attestation_untrusted")


def test_an_allow_list_without_trust_anchors_refuses_every_key(accounts_with: AppFactory) -> None:
    """Settings made in code skip the start-up check (Settings.from_env refuses them): registration still
    refuses to take a key's word for its model."""
    accounts = accounts_with(webauthn_aaguid_allowlist=(OTHER_MODEL,))
    claims = SoftAuthenticator(aaguid=bytes.fromhex(OTHER_MODEL.replace("-", "")))
    status, body = _register(accounts, claims)
    assert (status, body["code"]) == (403, "attestation_untrusted")
    assert accounts.login("alice")["status"] == "enroll"


def test_the_refusal_is_audited(accounts_with: AppFactory, tmp_path: Path) -> None:
    accounts, ca = _allow_list(accounts_with, tmp_path, OTHER_MODEL)
    _register(accounts, _attested_key(ca))
    admin = accounts.admin_session()
    events = ok(
        accounts.client.get(
            "/api/v1/admin/audit?action=token.activate&result=failure",
            headers={"Authorization": f"Bearer {admin['access_token']}"},
        )
    )["events"]
    assert [event["reason"] for event in events] == ["authenticator_not_allowed"]


def test_trust_anchors_accept_a_chain_to_them_and_refuse_others(
    accounts_with: AppFactory, tmp_path: Path
) -> None:
    ca_key, ca = make_test_ca()
    identity = issue_attestation_identity(
        aaguid=bytes(SOFT_AUTHENTICATOR_AAGUID), ca_key=ca_key, ca_certificate=ca
    )
    _, other_ca = make_test_ca("Tokenward test: another vendor")
    trusted = accounts_with(
        webauthn_attestation="direct", webauthn_trust_anchors=_pem(tmp_path / "ca.pem", ca)
    )
    assert _register(trusted, SoftAuthenticator(attestation_identity=identity))[0] == 200

    anchors = tmp_path / "anchors"
    anchors.mkdir()
    _pem(anchors / "other.pem", other_ca)
    distrusted = accounts_with(webauthn_attestation="direct", webauthn_trust_anchors=str(anchors))
    status, body = _register(distrusted, SoftAuthenticator(attestation_identity=identity), "bob")
    assert (status, body["code"]) == (403, "attestation_untrusted")


@pytest.mark.parametrize("attestation", ["packed", "none"], ids=["self", "none"])
def test_trust_anchors_refuse_keys_without_a_chain(
    accounts_with: AppFactory, tmp_path: Path, attestation: Any
) -> None:
    _, ca = make_test_ca()
    accounts = accounts_with(
        webauthn_attestation="direct", webauthn_trust_anchors=_pem(tmp_path / "ca.pem", ca)
    )
    status, body = _register(accounts, SoftAuthenticator(attestation=attestation))
    assert (status, body["code"]) == (403, "attestation_untrusted")


def test_without_trust_anchors_any_attestation_registers(accounts_with: AppFactory) -> None:
    accounts = accounts_with(webauthn_attestation="direct")
    assert _register(accounts, SoftAuthenticator(attestation="none"))[0] == 200


def test_required_user_verification(accounts_with: AppFactory) -> None:
    accounts = accounts_with(webauthn_user_verification="required")
    assert _register(accounts, SoftAuthenticator(builtin_uv=True))[0] == 200
    key = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    accounts.create_user("bob")
    key.enroll(accounts.enroll_session("bob"))
    challenge = key.start_login("bob")
    assert challenge["webauthn"]["publicKey"]["userVerification"] == "required"
    challenge["webauthn"]["publicKey"]["userVerification"] = "discouraged"  # a client that ignores it
    refused = key.verify(challenge["transaction_id"], key.sign(challenge))
    assert refused.status_code == 401 and refused.json is not None
    assert refused.json["code"] == "invalid_credential"
    assert key.login("bob")["amr"] == ["hwk", "pwd", "mfa"]
