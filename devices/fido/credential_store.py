"""What a software authenticator remembers: its credentials (private keys included), PIN hash and retries.

The state can live in a JSON file, replaced atomically after every change (temporary file, fsync, rename,
fsync of the directory) the way a key's flash survives being unplugged: a new `SoftAuthenticator` on the same
file is the same key. The file holds the credentials' PRIVATE KEYS in the clear. It is as sensitive as the
security key itself; it is created with mode 0600 and is meant for tests and emulation only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devices.fido.errors import SoftAuthenticatorStateError

__all__ = ["MAX_PIN_RETRIES", "AuthenticatorState", "StoredCredential", "read_state", "write_state"]

MAX_PIN_RETRIES = 8  # CTAP 2.1: the PIN retry counter starts at 8
_FORMAT = 1
_WARNING = "Private keys of a Tokenward software authenticator: as sensitive as the security key itself."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class StoredCredential:
    """One credential. `sequence` orders creation (newest first in a usernameless assertion)."""

    credential_id: bytes
    rp_id: str
    private_key: ec.EllipticCurvePrivateKey
    user_id: bytes
    user_name: str | None
    user_display_name: str | None
    discoverable: bool
    sequence: int
    sign_count: int = 0

    def to_json(self) -> dict[str, Any]:
        key = self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "id": _b64(self.credential_id),
            "rp_id": self.rp_id,
            "private_key": _b64(key),
            "user": {"id": _b64(self.user_id), "name": self.user_name, "displayName": self.user_display_name},
            "discoverable": self.discoverable,
            "sequence": self.sequence,
            "sign_count": self.sign_count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredCredential:
        key = serialization.load_der_private_key(_unb64(data["private_key"]), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("not an EC private key")
        user = data["user"]
        credential = cls(
            credential_id=_unb64(data["id"]),
            rp_id=data["rp_id"],
            private_key=key,
            user_id=_unb64(user["id"]),
            user_name=user["name"],
            user_display_name=user["displayName"],
            discoverable=data["discoverable"],
            sequence=data["sequence"],
            sign_count=data["sign_count"],
        )
        if not (isinstance(credential.rp_id, str) and isinstance(credential.sign_count, int)):
            raise TypeError("rp_id or sign_count of the wrong type")
        return credential


@dataclass
class AuthenticatorState:
    """Everything that survives a power cycle. `pin_hash` is LEFT(SHA-256(PIN), 16), as CTAP stores it."""

    credentials: list[StoredCredential] = field(default_factory=list)
    pin_hash: bytes | None = None
    pin_retries: int = MAX_PIN_RETRIES

    def find(self, rp_id: str, credential_id: bytes) -> StoredCredential | None:
        for credential in self.credentials:
            if credential.rp_id == rp_id and credential.credential_id == credential_id:
                return credential
        return None

    def discoverable(self, rp_id: str) -> list[StoredCredential]:
        """The RP's discoverable credentials, the most recently created first (CTAP 2.1, 6.2.2)."""
        found = [c for c in self.credentials if c.discoverable and c.rp_id == rp_id]
        return sorted(found, key=lambda credential: credential.sequence, reverse=True)

    def next_sequence(self) -> int:
        return max((c.sequence for c in self.credentials), default=0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "warning": _WARNING,
            "pin_hash": _b64(self.pin_hash) if self.pin_hash is not None else None,
            "pin_retries": self.pin_retries,
            "credentials": [credential.to_json() for credential in self.credentials],
        }

    @classmethod
    def from_json(cls, data: Any) -> AuthenticatorState:
        try:
            if data["format"] != _FORMAT:
                raise ValueError("unknown format")
            pin_hash = data["pin_hash"]
            state = cls(
                credentials=[StoredCredential.from_json(entry) for entry in data["credentials"]],
                pin_hash=_unb64(pin_hash) if pin_hash is not None else None,
                pin_retries=data["pin_retries"],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SoftAuthenticatorStateError("not a software authenticator state file") from err
        if not isinstance(state.pin_retries, int) or not 0 <= state.pin_retries <= MAX_PIN_RETRIES:
            raise SoftAuthenticatorStateError("not a software authenticator state file")
        return state


def read_state(path: Path) -> AuthenticatorState:
    """The state in `path`; a fresh authenticator's when the file does not exist yet (its directory must)."""
    if not path.parent.is_dir():
        raise SoftAuthenticatorStateError(f"cannot keep a state file in {path.parent}: no such directory")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AuthenticatorState()
    except OSError as err:
        raise SoftAuthenticatorStateError(f"cannot read {path}: {err.strerror}") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SoftAuthenticatorStateError("not a software authenticator state file") from err
    return AuthenticatorState.from_json(data)


def write_state(path: Path, state: AuthenticatorState) -> None:
    """Replace `path` atomically, mode 0600: a crash leaves the old state or the new, never half of one."""
    try:
        _replace(path, json.dumps(state.to_json(), indent=1).encode("utf-8"))
    except OSError as err:
        raise SoftAuthenticatorStateError(f"cannot write {path}: {err.strerror or err}") from err


def _replace(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
