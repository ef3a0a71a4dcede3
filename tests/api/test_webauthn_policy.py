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
from server.db import db
from tests.accounts import Accounts
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
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


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


def test_an_allow_list_refuses_other_models(accounts_with: AppFactory) -> None:
    accounts = accounts_with(webauthn_aaguid_allowlist=(OTHER_MODEL,))
    status, body = _register(accounts, SoftAuthenticator())
    assert (status, body["code"]) == (403, "authenticator_not_allowed")
    assert accounts.login("alice")["status"] == "enroll"
    status, _ = _register(
        accounts, SoftAuthenticator(aaguid=bytes.fromhex(OTHER_MODEL.replace("-", ""))), "bob"
    )
    assert status == 200


def test_an_allow_list_naming_the_model_accepts_it(accounts_with: AppFactory) -> None:
    accounts = accounts_with(webauthn_aaguid_allowlist=(str(SOFT_AUTHENTICATOR_AAGUID).upper(), OTHER_MODEL))
    assert _register(accounts, SoftAuthenticator())[0] == 200


def test_the_refusal_is_audited(accounts_with: AppFactory) -> None:
    accounts = accounts_with(webauthn_aaguid_allowlist=(OTHER_MODEL,))
    _register(accounts, SoftAuthenticator())
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
