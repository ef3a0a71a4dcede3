"""Attestation of the soft authenticator as python-fido2's verifiers judge it: packed self attestation,
packed basic attestation with a certificate chain from a test CA, and "none"."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation import AttestationResult, AttestationType, AttestationVerifier, UntrustedAttestation
from fido2.server import Fido2Server
from fido2.webauthn import AttestationConveyancePreference, AuthenticatorData, PublicKeyCredentialRpEntity

from devices.fido.attestation import OID_FIDO_AAGUID, issue_attestation_identity, make_test_ca
from devices.fido.soft_authenticator import SOFT_AUTHENTICATOR_AAGUID, SoftAuthenticator
from tests.devices.fido.relying_party import RP_ID, RelyingParty


class _Anchor(AttestationVerifier):
    def __init__(self, ca: x509.Certificate) -> None:
        super().__init__()
        self.ca = ca
        self.types: list[AttestationType] = []

    def ca_lookup(self, attestation_result: AttestationResult, auth_data: AuthenticatorData) -> bytes | None:
        self.types.append(attestation_result.attestation_type)
        return self.ca.public_bytes(Encoding.DER)


def _rp(verifier: AttestationVerifier | None) -> RelyingParty:
    server = Fido2Server(
        PublicKeyCredentialRpEntity(id=RP_ID, name="Test RP"),
        attestation=AttestationConveyancePreference.DIRECT,
        verify_attestation=verifier,
    )
    return RelyingParty(server)


def _attested_authenticator() -> tuple[SoftAuthenticator, x509.Certificate]:
    ca_key, ca = make_test_ca()
    identity = issue_attestation_identity(
        aaguid=bytes(SOFT_AUTHENTICATOR_AAGUID), ca_key=ca_key, ca_certificate=ca
    )
    return SoftAuthenticator(attestation_identity=identity), ca


def test_basic_attestation_chains_to_the_test_ca() -> None:
    device, ca = _attested_authenticator()
    verifier = _Anchor(ca)
    registered = _rp(verifier).register(device)
    assert verifier.types == [AttestationType.BASIC]
    assert registered.credential_data is not None


def test_a_different_ca_is_refused() -> None:
    device, _ = _attested_authenticator()
    _, other_ca = make_test_ca("Some other CA")
    with pytest.raises(UntrustedAttestation):
        _rp(_Anchor(other_ca)).register(device)


def test_self_attestation_has_no_chain() -> None:
    _, ca = make_test_ca()
    verifier = _Anchor(ca)
    _rp(verifier).register(SoftAuthenticator())
    assert verifier.types == [AttestationType.SELF]


def test_none_attestation() -> None:
    registered = _rp(None).register(SoftAuthenticator(attestation="none"))
    assert registered.credential_data is not None


def test_the_certificate_names_the_model() -> None:
    ca_key, ca = make_test_ca()
    identity = issue_attestation_identity(aaguid=b"\x11" * 16, ca_key=ca_key, ca_certificate=ca)
    leaf = x509.load_der_x509_certificate(identity.certificate_chain[0])
    extension = leaf.extensions.get_extension_for_oid(OID_FIDO_AAGUID).value
    assert isinstance(extension, x509.UnrecognizedExtension)
    assert extension.value == b"\x04\x10" + b"\x11" * 16
    assert leaf.issuer == ca.subject
