"""Many users, each with an active HOTP token, written straight into a migrated database for the benchmarks.

The rows are what enrollment leaves behind (a sealed seed with the token's id as associated data, counter 0,
state active), but written in bulk: `COPY` on PostgreSQL, chunked `executemany` on SQLite. Every seeded user
shares one Argon2id password hash (computed once). Only the users the benchmark drives keep their seeds in
memory; the others' seeds are random and forgotten.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert

from server.models import Token, User
from server.services.crypto import SecretBox
from server.services.passwords import hash_password

CHUNK_ROWS = 20_000
USER_COLUMNS = (
    "id",
    "uid",
    "username",
    "password_hash",
    "role",
    "disabled",
    "created_at",
    "factor_enrolled_at",
    "source",
)
TOKEN_COLUMNS = (
    "id",
    "user_id",
    "type",
    "state",
    "description",
    "secret_encrypted",
    "algorithm",
    "digits",
    "period",
    "counter",
    "drift_steps",
    "fail_count",
    "lock_count",
    "sign_count",
    "discoverable",
    "created_at",
    "activated_at",
)
FIRST_USER_ID = 1_000_000  # above any id the console or API hands out during a benchmark


@dataclass
class Holder:
    """A seeded user and the HOTP counter of the next code their token shows."""

    username: str
    key: bytes
    counter: int = 0


def username_of(index: int) -> str:
    return f"bench-{index:07d}"


def driven_indexes(total: int, driven: int) -> list[int]:
    """`driven` users spread evenly over all `total`, so lookups touch the whole index, not its first page."""
    step = total / driven
    return [int(position * step) for position in range(driven)]


def _rows(
    total: int, driven: set[int], box: SecretBox, password_hash: str, holders: dict[int, Holder]
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    now = time.time()
    for index in range(total):
        user_id, token_id, key = FIRST_USER_ID + index, secrets.token_hex(16), secrets.token_bytes(20)
        username = username_of(index)
        if index in driven:
            holders[index] = Holder(username, key)
        sealed = box.seal(key, associated_data=f"token:{token_id}")
        user = (user_id, secrets.token_hex(16), username, password_hash, "user", False, now, now, "local")
        token = (
            token_id,
            user_id,
            "hotp",
            "active",
            "",
            sealed,
            "SHA1",
            6,
            30,
            0,
            0,
            0,
            0,
            0,
            False,
            now,
            now,
        )
        yield user, token


def _chunks(rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> Iterator[tuple[list[Any], list[Any]]]:
    users: list[Any] = []
    tokens: list[Any] = []
    for user, token in rows:
        users.append(user)
        tokens.append(token)
        if len(users) == CHUNK_ROWS:
            yield users, tokens
            users, tokens = [], []
    if users:
        yield users, tokens


def seed(engine: Engine, *, total: int, driven: int, encryption_key: bytes, password: str) -> list[Holder]:
    """Writes `total` users with a token each; returns the `driven` ones, in a stable order."""
    box, password_hash = SecretBox(encryption_key), hash_password(password)
    indexes = driven_indexes(total, driven)
    holders: dict[int, Holder] = {}
    rows = _rows(total, set(indexes), box, password_hash, holders)
    if engine.dialect.name == "postgresql":
        _copy(engine, _chunks(rows))
    else:
        _insert(engine, _chunks(rows))
    return [holders[index] for index in indexes]


def _insert(engine: Engine, chunks: Iterator[tuple[list[Any], list[Any]]]) -> None:
    users, tokens = insert(User.__table__), insert(Token.__table__)
    with engine.begin() as connection:
        for user_rows, token_rows in chunks:
            connection.execute(users, [dict(zip(USER_COLUMNS, row, strict=True)) for row in user_rows])
            connection.execute(tokens, [dict(zip(TOKEN_COLUMNS, row, strict=True)) for row in token_rows])


def _copy(engine: Engine, chunks: Iterator[tuple[list[Any], list[Any]]]) -> None:
    """PostgreSQL's COPY through psycopg: the fast bulk path (one transaction)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for user_rows, token_rows in chunks:
            for table, columns, rows in (
                ("users", USER_COLUMNS, user_rows),
                ("tokens", TOKEN_COLUMNS, token_rows),
            ):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE users")
        cursor.execute("ANALYZE tokens")
        raw.commit()
    finally:
        raw.close()
