"""The rows a one-step verify reads, as plain frozen dataclasses read by prebuilt Core statements.

A one-step verify (`verify {username, otp}` from a registered client's login form) runs on every sign-in
of the applications that use Tokenward, so it stays off the ORM's unit of work: its statements are built
once (SQLAlchemy caches their compiled form), run on the request transaction's own connection, and give
row tuples turned into these dataclasses; nothing enters the session's identity map, so its commit has
nothing to flush or expire. The rules are those of the ORM path: the same columns, the same conditions,
the same locks (FOR SHARE on PostgreSQL when a sign-in is confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from server.models import Client, Token, User
from server.services.users import USERNAME_PATTERN
from server.token_kinds import TokenState

_CLIENTS = cast(Table, Client.__table__)
_USERS = cast(Table, User.__table__)
_TOKENS = cast(Table, Token.__table__)


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A registered client as a one-step verify needs it (the secret's salt and hash to authenticate it)."""

    id: str
    audience: str
    allowed_methods: str  # space separated: otp fob webauthn
    required_acr: str
    public: bool
    secret_salt: bytes
    secret_hash: str

    @classmethod
    def of(cls, client: Client) -> ClientRow:
        """The row of a client the ORM loaded (the RADIUS door's peer)."""
        return cls(
            client.id,
            client.audience,
            client.allowed_methods,
            client.required_acr,
            client.public,
            client.secret_salt,
            client.secret_hash,
        )


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    uid: str
    username: str
    disabled: bool
    source: str
    external_id: str | None

    @classmethod
    def of(cls, user: User) -> UserRow:
        """The row of a user the ORM loaded (a password check's)."""
        return cls(user.id, user.uid, user.username, user.disabled, user.source, user.external_id)


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An OTP token's columns that checking a code reads (server.services.otp)."""

    id: str
    user_id: int | None
    type: str
    algorithm: str | None
    digits: int | None
    period: int | None
    counter: int
    drift_steps: int
    last_time_step: int | None
    lock_count: int
    locked_until: float | None
    secret_encrypted: bytes | None


_CLIENT_COLUMNS = tuple(_CLIENTS.c[name] for name in ClientRow.__slots__)
_USER_COLUMNS = tuple(_USERS.c[name] for name in UserRow.__slots__)
_TOKEN_COLUMNS = tuple(_TOKENS.c[name] for name in TokenRow.__slots__)
_CLIENT_BY_ID = select(*_CLIENT_COLUMNS).where(_CLIENTS.c.id == bindparam("client_id"))
# The client as it was authenticated: still registered, and its secret not rotated since.
_SAME_CLIENT = and_(
    _CLIENTS.c.id == bindparam("client_id"), _CLIENTS.c.secret_hash == bindparam("secret_hash")
)
_CLIENT_STANDS = select(_CLIENTS.c.id).where(_SAME_CLIENT)
# Share-locked until the sign-in commits (PostgreSQL; SQLite's writers take turns anyway), as
# server.services.users.confirm_sign_in does on the ORM path: a disable, which updates the user's row before
# it ends their sessions, or the client's removal waits for the sign-in, then ends or refuses what it made.
_STILL_SIGNS_IN = (
    select(_USERS.c.id)
    .join(_CLIENTS, _SAME_CLIENT)
    .where(_USERS.c.id == bindparam("user_id"), _USERS.c.disabled.is_(False))
    .with_for_update(read=True)
)
_ACTIVE_TOKENS = (
    select(*_TOKEN_COLUMNS)
    .where(_TOKENS.c.user_id == bindparam("user_id"), _TOKENS.c.state == TokenState.ACTIVE)
    .order_by(_TOKENS.c.last_used_at.desc().nulls_last(), _TOKENS.c.created_at)
)


def connection_of(session: Session) -> Connection:
    """The connection of the session's transaction (begun if none is): the statements here run on it, in
    the transaction the session commits."""
    return session.connection()


def read_client(connection: Connection, *, client_id: str) -> ClientRow | None:
    row = connection.execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
    return None if row is None else ClientRow(*row)


def client_stands(connection: Connection, *, client: ClientRow) -> bool:
    """Whether the client is still registered with the secret it was authenticated by."""
    parameters = {"client_id": client.id, "secret_hash": client.secret_hash}
    return connection.execute(_CLIENT_STANDS, parameters).first() is not None


@cache
def _user_and_active_tokens(types: tuple[str, ...]) -> Select[Any]:
    """Built once per token-type set: the user by name, outer-joined to their active tokens of those types, in
    the order `tokens.active_tokens` gives."""
    return (
        select(*_USER_COLUMNS, *_TOKEN_COLUMNS)
        .select_from(_USERS)
        .outerjoin(
            _TOKENS,
            # `=` per type rather than IN: an IN list is expanded into the SQL at every execution.
            and_(
                _TOKENS.c.user_id == _USERS.c.id,
                _TOKENS.c.state == TokenState.ACTIVE,
                or_(*(_TOKENS.c.type == t for t in types)),
            ),
        )
        .where(_USERS.c.username == bindparam("username"))
        .order_by(_TOKENS.c.last_used_at.desc().nulls_last(), _TOKENS.c.created_at)
    )


def find_user_with_tokens(
    connection: Connection, *, username: str, types: tuple[str, ...]
) -> tuple[UserRow | None, list[TokenRow]]:
    """The user named `username` (a name that cannot be one is not looked up) and their active tokens of
    `types`, most recently used first, in one round trip."""
    if not USERNAME_PATTERN.match(username):
        return None, []
    rows = connection.execute(_user_and_active_tokens(types), {"username": username}).all()
    if not rows:
        return None, []
    split = len(_USER_COLUMNS)
    user = UserRow(*rows[0][:split])
    return user, [TokenRow(*row[split:]) for row in rows if row[split] is not None]


def active_tokens(connection: Connection, *, user_id: int, types: tuple[str, ...]) -> list[TokenRow]:
    """The user's active tokens of `types`, in the order `find_user_with_tokens` gives them."""
    rows = connection.execute(_ACTIVE_TOKENS, {"user_id": user_id}).all()
    return [TokenRow(*row) for row in rows if row.type in types]


def still_signs_in(connection: Connection, *, user_id: int, client: ClientRow) -> bool:
    """Whether the user is still enabled and the client still registered with the secret it was
    authenticated by (share-locked on PostgreSQL: a rotation waits for the sign-in)."""
    parameters = {"user_id": user_id, "client_id": client.id, "secret_hash": client.secret_hash}
    return connection.execute(_STILL_SIGNS_IN, parameters).first() is not None
