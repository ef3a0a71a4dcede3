"""JWT signing keys: ES256, stored encrypted, rotated without downtime, published as a JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from server.models import SigningKey
from server.services.crypto import SecretBox

ALGORITHM = "ES256"


def _b64url_uint(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).decode().rstrip("=")


def public_jwk(public_key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url_uint(numbers.x),
        "y": _b64url_uint(numbers.y),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def _thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid every node derives the same way."""
    jwk = public_jwk(public_key, "")
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    fetched_at: float


class KeyRing:
    """Per-node cache. Public keys never change for a kid; the active key is re-read every few seconds so a
    rotation on one node reaches the others without a restart."""

    def __init__(self, box: SecretBox, *, cache_seconds: int) -> None:
        self._box = box
        self._cache_seconds = cache_seconds
        self._public: dict[str, ec.EllipticCurvePublicKey] = {}
        self._active: ActiveKey | None = None
        self._lock = threading.Lock()

    def signing_key(self, session: Session, *, now: float) -> ActiveKey:
        with self._lock:
            active = self._active
            if active is None or now - active.fetched_at >= self._cache_seconds or now < active.fetched_at:
                row = session.scalars(
                    select(SigningKey)
                    .where(SigningKey.retired_at.is_(None))
                    .order_by(SigningKey.created_at.desc())
                ).first()
                if row is None:
                    row = create_signing_key(session, self._box, now=now)
                    session.commit()
                private = serialization.load_der_private_key(
                    self._box.open(row.private_key_encrypted, associated_data=f"signing-key:{row.kid}"), None
                )
                assert isinstance(private, ec.EllipticCurvePrivateKey)
                active = self._active = ActiveKey(row.kid, private, now)
            return active

    def public_key(
        self, session: Session, kid: str, *, valid_since: float
    ) -> ec.EllipticCurvePublicKey | None:
        """The key for `kid`, unless unknown or retired before `valid_since`."""
        row = session.get(SigningKey, kid)
        if row is None or (row.retired_at is not None and row.retired_at < valid_since):
            return None
        with self._lock:
            key = self._public.get(kid)
            if key is None:
                key = self._public[kid] = _load_public(row)
        return key


def _load_public(row: SigningKey) -> ec.EllipticCurvePublicKey:
    jwk = json.loads(row.public_jwk)
    x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def create_signing_key(session: Session, box: SecretBox, *, now: float) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = _thumbprint(private.public_key())
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_encrypted=box.seal(der, associated_data=f"signing-key:{kid}"),
        public_jwk=json.dumps(public_jwk(private.public_key(), kid)),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def rotate_signing_key(session: Session, box: SecretBox, *, now: float) -> str:
    """Retires the current key (it stays published until its tokens expire) and starts a new one."""
    session.execute(update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now))
    row = create_signing_key(session, box, now=now)
    session.commit()
    return row.kid


def published_keys(session: Session, *, now: float, retention_seconds: float) -> dict[str, Any]:
    """Current key plus retired keys whose tokens may still be valid."""
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now - retention_seconds))
        .order_by(SigningKey.created_at.desc())
    ).all()
    return {"keys": [json.loads(row.public_jwk) for row in rows]}
