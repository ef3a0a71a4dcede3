"""Secrets at rest: AES-GCM with the row id as associated data; the generated key file."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import ConfigurationError
from server.services.crypto import SecretBox, SecretUnreadable, decode_key, load_or_create_key

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
