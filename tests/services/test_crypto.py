"""Secrets at rest: AES-GCM with the row id as associated data; the generated key file."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from server.config import Settings
from server.errors import ConfigurationError
from server.services.crypto import (
    KEY_ID_BYTES,
    NONCE_BYTES,
    UNNAMED_KEY_FORMAT,
    SecretBox,
    SecretUnreadable,
    decode_key,
    key_id,
    load_or_create_key,
    secret_box,
)

BOX = SecretBox(secrets.token_bytes(32))


def test_seal_and_open() -> None:
    sealed = BOX.seal(b"seed", associated_data="token:a")
    assert b"seed" not in sealed
    assert BOX.open(sealed, associated_data="token:a") == b"seed"
    assert BOX.seal(b"seed", associated_data="token:a") != sealed  # fresh nonce each time


def test_a_blob_moved_to_another_row_does_not_open() -> None:
    sealed = BOX.seal(b"seed", associated_data="token:a")
    with pytest.raises(SecretUnreadable):
        BOX.open(sealed, associated_data="token:b")


def test_another_key_does_not_open() -> None:
    sealed = BOX.seal(b"seed", associated_data="token:a")
    with pytest.raises(SecretUnreadable):
        SecretBox(secrets.token_bytes(32)).open(sealed, associated_data="token:a")


@given(blob=st.binary(max_size=200))
def test_any_bytes_open_or_fail_typed(blob: bytes) -> None:
    with pytest.raises(SecretUnreadable):
        BOX.open(blob, associated_data="token:a")


@given(position=st.integers(min_value=0, max_value=40), flip=st.integers(min_value=1, max_value=255))
def test_any_tampering_is_detected(position: int, flip: int) -> None:
    sealed = bytearray(BOX.seal(b"0123456789abcdef", associated_data="x"))
    sealed[position % len(sealed)] ^= flip
    with pytest.raises(SecretUnreadable):
        BOX.open(bytes(sealed), associated_data="x")


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path, "")
    second = load_or_create_key(tmp_path, "")
    assert first == second and len(first) == 32
    assert stat.S_IMODE((tmp_path / "encryption.key").stat().st_mode) == 0o600


def test_configured_key_wins_and_is_checked(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    assert load_or_create_key(tmp_path, key.hex()) == key
    assert not (tmp_path / "encryption.key").exists()
    for bad in ("short", "zz" * 32, "AAAA"):
        with pytest.raises(ConfigurationError):
            SecretBox(decode_key(bad))


def _sealed_before_key_ids(key: bytes, plaintext: bytes, associated_data: str) -> bytes:
    """A blob as version 1 wrote it: 01 | nonce | ciphertext+tag, no key id."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return UNNAMED_KEY_FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data.encode())


def test_a_blob_names_its_key_and_an_old_key_still_opens() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    sealed_with_old = SecretBox(old).seal(b"seed", associated_data="token:a")
    assert sealed_with_old[1 : 1 + KEY_ID_BYTES] == key_id(old) != key_id(new)
    rotated = SecretBox(new, old_keys=[old])
    assert rotated.open(sealed_with_old, associated_data="token:a") == b"seed"
    assert not rotated.sealed_with_current_key(sealed_with_old)
    resealed = rotated.reseal(sealed_with_old, associated_data="token:a")
    assert rotated.sealed_with_current_key(resealed)
    assert SecretBox(new).open(resealed, associated_data="token:a") == b"seed"
    with pytest.raises(SecretUnreadable, match="not configured"):
        SecretBox(new).open(sealed_with_old, associated_data="token:a")
    with pytest.raises(SecretUnreadable):  # re-sealing keeps the associated data
        rotated.open(resealed, associated_data="token:b")


def test_blobs_from_before_key_ids_open_with_the_current_or_an_old_key() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    legacy = _sealed_before_key_ids(old, b"seed", "token:a")
    assert SecretBox(old).open(legacy, associated_data="token:a") == b"seed"
    assert SecretBox(new, old_keys=[old]).open(legacy, associated_data="token:a") == b"seed"
    assert not SecretBox(old).sealed_with_current_key(legacy)  # rotate-key gives it a key id
    with pytest.raises(SecretUnreadable):
        SecretBox(new).open(legacy, associated_data="token:a")
    with pytest.raises(SecretUnreadable):
        SecretBox(old).open(legacy, associated_data="token:b")


def test_old_keys_are_checked_and_named_in_the_error() -> None:
    settings = Settings(old_encryption_keys=("zz" * 32,))
    with pytest.raises(ConfigurationError, match="TOKENWARD_OLD_ENCRYPTION_KEYS"):
        secret_box(settings, secrets.token_bytes(32))
    parsed = Settings.from_env({"TOKENWARD_OLD_ENCRYPTION_KEYS": "aa" * 32 + ", " + "bb" * 32})
    assert parsed.old_encryption_keys == ("aa" * 32, "bb" * 32)
