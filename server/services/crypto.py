"""Secrets at rest: AES-256-GCM with the owning row's id as associated data.

A sealed blob moved to another row (or another purpose) fails to open, so a database edit cannot swap seeds.
Each blob names the key that sealed it (a short id derived from the key), so that a new key can take over
while the blobs of the old one are still read: `tokenward secrets rotate-key` then re-seals them all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.config import Settings
from server.errors import ConfigurationError, TokenwardError

# Version 1 (before key ids): 01 | nonce | ciphertext+tag, sealed with the one key there was.
UNNAMED_KEY_FORMAT = b"\x01"
# Version 2: 02 | key id | nonce | ciphertext+tag.
NAMED_KEY_FORMAT = b"\x02"
KEY_ID_BYTES = 8  # names a key among the few configured; not a secret, and no help in guessing the key
NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our row counts
TAG_BYTES = 16
KEY_FILE = "encryption.key"
_KEY_ID_LABEL = b"tokenward encryption key id"


class SecretUnreadable(TokenwardError):
    code, status, title = "secret_unreadable", 500, "A stored secret could not be decrypted"


def key_id(key: bytes) -> bytes:
    """A key's public name: an HMAC of a fixed label under the key (one-way, so it reveals nothing)."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]


class SecretBox:
    """Seals with the current key; opens with it or any old key still configured."""

    def __init__(self, key: bytes, *, old_keys: Sequence[bytes] = ()) -> None:
        if any(len(candidate) != 32 for candidate in (key, *old_keys)):
            raise ConfigurationError("TOKENWARD_ENCRYPTION_KEY must decode to 32 bytes")
        self.current_key_id = key_id(key)
        self._current = AESGCM(key)
        self._by_id = {self.current_key_id: self._current}
        for old in old_keys:
            self._by_id.setdefault(key_id(old), AESGCM(old))

    def seal(self, plaintext: bytes, *, associated_data: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext, associated_data.encode())
        return NAMED_KEY_FORMAT + self.current_key_id + nonce + sealed

    def open(self, blob: bytes, *, associated_data: str) -> bytes:
        if blob[:1] == NAMED_KEY_FORMAT and len(blob) >= 1 + KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES:
            aead = self._by_id.get(blob[1 : 1 + KEY_ID_BYTES])
            if aead is None:
                raise SecretUnreadable("sealed with an encryption key that is not configured")
            return _decrypt([aead], blob[1 + KEY_ID_BYTES :], associated_data)
        if blob[:1] == UNNAMED_KEY_FORMAT and len(blob) >= 1 + NONCE_BYTES + TAG_BYTES:
            # No name: the key of its day, which may be the current key or one kept as old (GCM's tag tells).
            return _decrypt(list(self._by_id.values()), blob[1:], associated_data)
        raise SecretUnreadable("unknown secret format")

    def sealed_with_current_key(self, blob: bytes) -> bool:
        return blob[:1] == NAMED_KEY_FORMAT and blob[1 : 1 + KEY_ID_BYTES] == self.current_key_id

    def reseal(self, blob: bytes, *, associated_data: str) -> bytes:
        """The same secret sealed with the current key (a fresh nonce)."""
        return self.seal(self.open(blob, associated_data=associated_data), associated_data=associated_data)


def _decrypt(candidates: list[AESGCM], nonce_and_sealed: bytes, associated_data: str) -> bytes:
    nonce, sealed = nonce_and_sealed[:NONCE_BYTES], nonce_and_sealed[NONCE_BYTES:]
    for aead in candidates:
        try:
            return aead.decrypt(nonce, sealed, associated_data.encode())
        except InvalidTag:
            continue
    raise SecretUnreadable()


def decode_key(text: str, *, name: str = "TOKENWARD_ENCRYPTION_KEY") -> bytes:
    """Accepts 64 hex digits or unpadded/padded base64url of 32 bytes."""
    text = text.strip()
    try:
        key = (
            bytes.fromhex(text)
            if len(text) == 64
            else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
    except (ValueError, binascii.Error) as err:
        raise ConfigurationError(f"{name} is neither hex nor base64url") from err
    if len(key) != 32:
        raise ConfigurationError(f"{name} must decode to 32 bytes")
    return key


def load_or_create_key(instance_dir: Path, configured: str) -> bytes:
    """The configured key, else the instance key file, created (mode 0600, exclusively) on first run."""
    if configured:
        return decode_key(configured)
    path = instance_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=") + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return decode_key(path.read_text())


def load_existing_key(instance_dir: Path, configured: str) -> bytes | None:
    """The configured key, else the instance key file if there is one (nothing is created)."""
    if configured:
        return decode_key(configured)
    path = instance_dir / KEY_FILE
    return decode_key(path.read_text()) if path.is_file() else None


def secret_box(settings: Settings, key: bytes) -> SecretBox:
    """The box for `key` (the current one) and the old keys the settings name."""
    old = [decode_key(text, name="TOKENWARD_OLD_ENCRYPTION_KEYS") for text in settings.old_encryption_keys]
    return SecretBox(key, old_keys=old)
