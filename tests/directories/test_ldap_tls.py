"""The README's OpenLDAP configuration over TLS, against slapd with a certificate from a throwaway CA:
`ldaps://` and StartTLS verified against `TOKENWARD_LDAP_CA_FILE`; without that CA the certificate is not
trusted and the answer is a 503, never an unverified bind."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.config import parse_ldap_attributes
from server.directories.ldap import LdapConfig, LdapDirectory
from server.errors import DirectoryUnavailable
from tests.directories.conftest import ATTRIBUTES
from tests.directories.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, password_of

LIFETIME = datetime.timedelta(days=1)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def tls_slapd(tmp_path: Path) -> Iterator[tuple[Slapd, Path]]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Tokenward test CA", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, issuer=ca.subject, issuer_key=ca_key)
    pem = serialization.Encoding.PEM
    certificate = _write(tmp_path / "server.pem", server.public_bytes(pem))
    key = _write(
        tmp_path / "server.key",
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    ca_file = _write(tmp_path / "ca.pem", ca.public_bytes(pem))
    slapd = Slapd(tmp_path / "slapd", tls=(certificate, key))
    slapd.start()
    yield slapd, ca_file
    slapd.stop()


def _config(url: str, ca_file: Path | None, **changes: object) -> LdapConfig:
    config = LdapConfig(
        urls=(url,),
        user_base=PEOPLE,
        user_filter="(&(objectClass=inetOrgPerson)(uid={username}))",
        attributes=parse_ldap_attributes(ATTRIBUTES),
        bind_dn=SERVICE_DN,
        bind_password=SERVICE_PASSWORD,
        ca_file=str(ca_file) if ca_file else "",
        timeout_seconds=2,
    )
    return dataclasses.replace(config, **changes)


def _signs_in(config: LdapConfig) -> bool:
    directory = LdapDirectory(config)
    try:
        found = directory.check_password(username="alice", password=password_of("alice"), known=None)
        return found is not None and found.username == "alice"
    finally:
        directory.close()


def test_ldaps_and_starttls_verified_against_the_ca_file(tls_slapd: tuple[Slapd, Path]) -> None:
    slapd, ca_file = tls_slapd
    starttls_url = f"ldap://localhost:{slapd.port}"

    assert _signs_in(_config(slapd.ldaps_url, ca_file))
    assert _signs_in(_config(starttls_url, ca_file, starttls="always"))

    for untrusted in (_config(slapd.ldaps_url, None), _config(starttls_url, None, starttls="always")):
        with pytest.raises(DirectoryUnavailable):
            _signs_in(untrusted)
