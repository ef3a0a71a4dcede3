"""Argon2id password hashes, at the costs the settings give (default: RFC 9106's low-memory profile).

The hasher is the process's own: one process serves one configuration, set by `use_costs` when the app or
the RADIUS runtime is built."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.config import Settings

_hasher = PasswordHasher()  # argon2-cffi's defaults equal Settings' defaults

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


def use_costs(settings: Settings) -> None:
    """Hash new passwords (and the timing equaliser) at the settings' Argon2id costs from now on."""
    global _hasher, _dummy_hash
    costs = (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == costs:
        return
    _hasher = PasswordHasher(time_cost=costs[0], memory_cost=costs[1], parallelism=costs[2])
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
