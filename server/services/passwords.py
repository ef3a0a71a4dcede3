"""Argon2id password hashes (argon2-cffi defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # bounds hashing cost of hostile input


class _DummyHash:
    """The hash verified against when the user does not exist, so unknown users cost the same time as wrong
    passwords. Made on first use rather than at import (an Argon2 hash costs every process start, console
    `--help` included); the lock makes concurrent first calls share one hash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: str | None = None

    def get(self) -> str:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = _hasher.hash("tokenward-timing-equaliser")
                value = self._value
        return value


_dummy_hash = _DummyHash()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Constant-effort check; a missing hash still spends one Argon2 verification."""
    # Fetched whether or not it is needed, so that a process's first check costs the same both ways.
    dummy = _dummy_hash.get()
    try:
        return _hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
