"""Attestation statements of the software authenticator: "packed" (self, or basic with a certificate
chain) and "none"; plus the test CA and attestation certificates a relying party's trust anchors can check.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fido2.cose import ES256

__all__ = [
    "AttestationFormat",
    "AttestationIdentity",
    "attestation_statement",
    "issue_attestation_identity",
    "make_test_ca",
]

AttestationFormat = Literal["packed", "none"]
OID_FIDO_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class AttestationIdentity:
    """A batch attestation key and its certificate chain (DER, leaf first) for "packed" basic attestation."""

    private_key: ec.EllipticCurvePrivateKey
    certificate_chain: tuple[bytes, ...]


def sign_es256(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def attestation_statement(
    fmt: AttestationFormat,
    *,
    signed_data: bytes,
    credential_key: ec.EllipticCurvePrivateKey,
    identity: AttestationIdentity | None,
) -> dict[str, Any]:
    """attStmt over authenticatorData || clientDataHash: signed by the attestation key when there is an
    identity, else by the credential's own key (self attestation, which proves possession, not the model)."""
    if fmt == "none":
        return {}
    if identity is None:
        return {"alg": ES256.ALGORITHM, "sig": sign_es256(credential_key, signed_data)}
    return {
        "alg": ES256.ALGORITHM,
        "sig": sign_es256(identity.private_key, signed_data),
        "x5c": list(identity.certificate_chain),
    }


def _name(common_name: str, *, unit: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tokenward test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if unit is not None:
        attributes.insert(2, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
    )


def make_test_ca(
    common_name: str = "Tokenward test attestation CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed P-256 CA for tests: configure its certificate as the relying party's trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    certificate = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def issue_attestation_identity(
    *, aaguid: bytes, ca_key: ec.EllipticCurvePrivateKey, ca_certificate: x509.Certificate
) -> AttestationIdentity:
    """A fresh attestation key with a certificate meeting WebAuthn's packed requirements (version 3, C, O,
    OU "Authenticator Attestation", CN, CA=false, the AAGUID extension), issued by the given CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name("Tokenward soft authenticator", unit="Authenticator Attestation")
    aaguid_extension = x509.UnrecognizedExtension(OID_FIDO_AAGUID, b"\x04\x10" + aaguid)  # OCTET STRING
    certificate = (
        _builder(subject, ca_certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(aaguid_extension, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = (certificate.public_bytes(serialization.Encoding.DER),)
    return AttestationIdentity(private_key=key, certificate_chain=chain)
