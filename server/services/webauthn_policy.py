"""The relying party as configured: origin, user verification, attestation trust anchors, AAGUID allow-list.

python-fido2's `Fido2Server` runs the ceremonies; this module decides how strict it is.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation.base import AttestationResult, AttestationType, AttestationVerifier
from fido2.server import Fido2Server
from fido2.webauthn import (
    AttestationConveyancePreference,
    AuthenticatorData,
    PublicKeyCredentialRpEntity,
    UserVerificationRequirement,
)

from server.config import Settings
from server.errors import AttestationUntrusted, AuthenticatorNotAllowed, ConfigurationError

RP_NAME = "Tokenward"


class TrustAnchors(AttestationVerifier):
    """Accepts an attestation only if its chain ends in one of the configured CA certificates."""

    def __init__(self, certificates: list[x509.Certificate]) -> None:
        super().__init__()
        self._by_subject = {cert.subject: cert for cert in certificates}

    def ca_lookup(self, attestation_result: AttestationResult, auth_data: AuthenticatorData) -> bytes | None:
        if attestation_result.attestation_type == AttestationType.SELF or not attestation_result.trust_path:
            return None  # self attestation proves nothing about the model
        last = x509.load_der_x509_certificate(attestation_result.trust_path[-1])
        anchor = self._by_subject.get(last.issuer)
        return anchor.public_bytes(Encoding.DER) if anchor is not None else None


def load_trust_anchors(location: str) -> TrustAnchors:
    """PEM CA certificates from a file, or from every *.pem / *.crt file in a directory."""
    path = Path(location)
    files = sorted([*path.glob("*.pem"), *path.glob("*.crt")]) if path.is_dir() else [path]
    try:
        certificates = [cert for file in files for cert in x509.load_pem_x509_certificates(file.read_bytes())]
    except (OSError, ValueError) as err:
        raise ConfigurationError("TOKENWARD_WEBAUTHN_TRUST_ANCHORS: unreadable certificates") from err
    if not certificates:
        raise ConfigurationError("TOKENWARD_WEBAUTHN_TRUST_ANCHORS: no certificates found")
    return TrustAnchors(certificates)


@functools.lru_cache(maxsize=8)
def relying_party(settings: Settings) -> Fido2Server:
    """The Fido2Server for these settings. The origin must be exactly the public URL's (python-fido2's default
    would accept any https origin under the RP ID)."""
    verifier = (
        load_trust_anchors(settings.webauthn_trust_anchors) if settings.webauthn_trust_anchors else None
    )
    expected_origin = settings.public_origin
    return Fido2Server(
        PublicKeyCredentialRpEntity(id=settings.rp_id, name=RP_NAME),
        attestation=AttestationConveyancePreference(settings.webauthn_attestation),
        verify_origin=lambda origin: origin == expected_origin,
        verify_attestation=verifier,
    )


def user_verification(settings: Settings) -> UserVerificationRequirement:
    return UserVerificationRequirement(settings.webauthn_user_verification)


def check_aaguid(settings: Settings, aaguid: str) -> None:
    """The allow-list, for a key whose attestation `Fido2Server` has verified against the trust anchors (it
    refuses `none` and self attestation before this runs). Without that verification the AAGUID is only the
    key's claim: an allow-list then refuses every key (Settings.check also refuses it at start)."""
    allowed = {entry.lower() for entry in settings.webauthn_aaguid_allowlist}
    if not allowed:
        return
    if not settings.verifies_attestation:
        raise AttestationUntrusted("An AAGUID allow-list needs attestation verified against trust anchors")
    if aaguid.lower() not in allowed:
        raise AuthenticatorNotAllowed()
