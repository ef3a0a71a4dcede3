"""The authenticator's side of CTAP2 PIN/UV auth protocols 1 and 2 (CTAP 2.1, section 6.5.6 and 6.5.7).

Written from the specification rather than borrowed from python-fido2's client classes, so the tests prove
that two independent implementations agree. Every malformed input raises `CtapError`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2.ctap import CtapError

__all__ = ["PROTOCOLS", "PinUvProtocolV1", "PinUvProtocolV2", "cose_key_agreement"]

ERR = CtapError.ERR
_COSE_EC2, _COSE_P256, _ECDH_ES_HKDF_256 = 2, 1, -25
_COORDINATE_BYTES = 32
_AES_BLOCK = 16


def cose_key_agreement(private_key: ec.EllipticCurvePrivateKey) -> dict[int, Any]:
    """The authenticator's keyAgreement public key as CTAP encodes it (alg -25 whatever the protocol)."""
    numbers = private_key.public_key().public_numbers()
    return {
        1: _COSE_EC2,
        3: _ECDH_ES_HKDF_256,
        -1: _COSE_P256,
        -2: numbers.x.to_bytes(_COORDINATE_BYTES, "big"),
        -3: numbers.y.to_bytes(_COORDINATE_BYTES, "big"),
    }


def _peer_public_key(cose: Mapping[Any, Any]) -> ec.EllipticCurvePublicKey:
    x, y = cose.get(-2), cose.get(-3)
    if cose.get(1) != _COSE_EC2 or cose.get(-1) != _COSE_P256:
        raise CtapError(ERR.INVALID_PARAMETER)
    if not (isinstance(x, bytes) and isinstance(y, bytes)) or {len(x), len(y)} != {_COORDINATE_BYTES}:
        raise CtapError(ERR.INVALID_PARAMETER)
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    )
    try:
        return numbers.public_key()
    except ValueError as err:  # not a point on P-256
        raise CtapError(ERR.INVALID_PARAMETER) from err


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    if not data or len(data) % _AES_BLOCK:
        raise CtapError(ERR.INVALID_PARAMETER)
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


class PinUvProtocolV1:
    """Protocol 1: shared secret SHA-256(Z), AES-256-CBC with a zero IV, HMAC-SHA-256 cut to 16 bytes."""

    VERSION: ClassVar[int] = 1
    MAC_BYTES: ClassVar[int] = 16

    def shared_secret(self, private_key: ec.EllipticCurvePrivateKey, peer: Mapping[Any, Any]) -> bytes:
        """ECDH with the platform's keyAgreement key, then the protocol's KDF."""
        return self.kdf(private_key.exchange(ec.ECDH(), _peer_public_key(peer)))

    def kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        return _aes_cbc(key, bytes(_AES_BLOCK), plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        return _aes_cbc(key, bytes(_AES_BLOCK), ciphertext, encrypt=False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.digest(key[:32], message, "sha256")[: self.MAC_BYTES]

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.authenticate(key, message), signature)


class PinUvProtocolV2(PinUvProtocolV1):
    """Protocol 2: HKDF-derived HMAC and AES keys, a random IV in front of the ciphertext, full HMAC."""

    VERSION: ClassVar[int] = 2
    MAC_BYTES: ClassVar[int] = 32

    def kdf(self, z: bytes) -> bytes:
        return self._hkdf(z, b"CTAP2 HMAC key") + self._hkdf(z, b"CTAP2 AES key")

    @staticmethod
    def _hkdf(z: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=info).derive(z)

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        iv = secrets.token_bytes(_AES_BLOCK)
        return iv + _aes_cbc(key[32:], iv, plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        iv, body = ciphertext[:_AES_BLOCK], ciphertext[_AES_BLOCK:]
        if len(iv) != _AES_BLOCK:
            raise CtapError(ERR.INVALID_PARAMETER)
        return _aes_cbc(key[32:], iv, body, encrypt=False)


# By version number, the preferred first (the order getInfo lists them in).
PROTOCOLS: dict[int, PinUvProtocolV1] = {2: PinUvProtocolV2(), 1: PinUvProtocolV1()}
