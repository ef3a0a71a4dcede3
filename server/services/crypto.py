"""Secrets at rest: AES-256-GCM with the owning row's id as associated data.

A sealed blob moved to another row (or another purpose) fails to open, so a database edit cannot swap seeds.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.errors import ConfigurationError, TokenwardError

FORMAT_VERSION = b"\x01"
NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our row counts
TAG_BYTES = 16
KEY_FILE = "encryption.key"


class SecretUnreadable(TokenwardError):
    code, status, title = "secret_unreadable", 500, "A stored secret could not be decrypted"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("TOKENWARD_ENCRYPTION_KEY must decode to 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, associated_data: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return FORMAT_VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data.encode())

    def open(self, blob: bytes, *, associated_data: str) -> bytes:
        if blob[:1] != FORMAT_VERSION or len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
            raise SecretUnreadable("unknown secret format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, associated_data.encode())
        except InvalidTag as err:
            raise SecretUnreadable() from err


def decode_key(text: str) -> bytes:
    """Accepts 64 hex digits or unpadded/padded base64url of 32 bytes."""
    text = text.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as err:
        raise ConfigurationError("TOKENWARD_ENCRYPTION_KEY is neither hex nor base64url") from err


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
