"""Backups of the SQLite database, and restoring one into an instance.

A backup is SQLite's online backup API (`sqlite3.Connection.backup`): a consistent snapshot taken while the
server goes on writing (WAL mode lets readers and the writer proceed side by side), written to a temporary
file beside the target and renamed into place once checked. A restore first checks the file (a Tokenward
database at a migration this version knows, with only the schema its migrations create — see backup_schema —
and secrets that open with the configured key) and refuses to replace a database that holds accounts unless
forced. It then copies the backup to a private file beside the target, checks that copy again (the backup
could change in between), migrates it forward, and only then copies it over the target's pages: a refused
or failed restore leaves the target as it was.
PostgreSQL has its own tools (pg_dump, pg_restore); these refuse it with that advice.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, select, table
from sqlalchemy.engine import make_url

from server.db import tune_sqlite
from server.errors import Conflict, TokenwardError, ValidationFailed
from server.migrations import known_revisions, upgrade_schema
from server.services.backup_schema import SCHEMA_QUERY, DuplicateObject, schema_difference, schema_of
from server.services.crypto import SecretBox, SecretUnreadable
from server.services.sealed_columns import SEALED_COLUMNS

BUSY_TIMEOUT_SECONDS = 30.0  # a writer holding the lock is waited for, as the server's workers wait
# Rows in any of these make a database an instance in use, which a restore will not replace unforced.
ACCOUNT_TABLES = ("users", "tokens", "clients")
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite may leave beside a database file
POSTGRESQL_ADVICE = (
    "the database is not SQLite: back PostgreSQL up with pg_dump (pg_dump --format=custom --file FILE "
    "DATABASE) and restore it with pg_restore; the encryption key is not in the dump either"
)


class BackupFailed(TokenwardError):
    code, status, title = "backup_failed", 422, "The backup could not be made or restored"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    revision: str  # its migration
    users: int
    tokens: int


def sqlite_path(database_url: str) -> Path:
    """The file of a SQLite URL; any other database is refused with the advice for it."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupFailed(POSTGRESQL_ADVICE)
    if not url.database or url.database == ":memory:":
        raise BackupFailed("the database is in memory: there is nothing on disk to back up")
    return Path(url.database)


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    # A URI only for read-only opening, its path quoted (a `?` or `#` in a file name would end it).
    target = f"file:{quote(str(path.resolve()))}?mode=ro" if read_only else str(path)
    try:
        connection = sqlite3.connect(target, uri=read_only, timeout=BUSY_TIMEOUT_SECONDS)
        # A backup's schema is not trusted: nothing in it may call a function that has side effects.
        connection.execute("PRAGMA trusted_schema=OFF")
    except sqlite3.Error as err:
        raise BackupFailed(f"cannot open {path}: {err}") from err
    return connection


def _inspect(connection: sqlite3.Connection, path: Path) -> BackupInfo:
    """Checks that `connection` is a sound Tokenward database at a known migration."""
    try:
        [(verdict,)] = connection.execute("PRAGMA quick_check").fetchall()
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alembic_version" not in tables or not {"users", "tokens"} <= tables:
            raise BackupFailed(f"{path} is not a Tokenward database")
        revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        users = connection.execute("SELECT count(*) FROM users").fetchone()[0]
        tokens = connection.execute("SELECT count(*) FROM tokens").fetchone()[0]
    except sqlite3.DatabaseError as err:
        raise BackupFailed(f"{path} is not a SQLite database ({err})") from err
    if verdict != "ok":
        raise BackupFailed(f"{path} is damaged (SQLite's check: {verdict})")
    if len(revisions) != 1 or revisions[0] not in known_revisions():
        raise BackupFailed(
            f"{path} is at a migration this version does not know ({', '.join(revisions) or 'none'}): "
            "restore it with the Tokenward version that made it, or a newer one"
        )
    return BackupInfo(path, revisions[0], users, tokens)


def write_backup(source: Path, destination: Path, *, overwrite: bool = False) -> BackupInfo:
    """A consistent copy of the database `source` at `destination` (mode 0600: it holds password hashes and
    sealed secrets), complete or not there at all."""
    if not source.is_file():
        raise BackupFailed(f"no database at {source}")
    if destination.exists() and not overwrite:
        raise BackupFailed(f"{destination} exists; give --force to replace it")
    if not destination.parent.is_dir():
        raise BackupFailed(f"no directory {destination.parent}")
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        copy = _copy(source, partial)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(destination, copy.revision, copy.users, copy.tokens)


def _copy(source: Path, destination: Path) -> BackupInfo:
    """Copies with the backup API, then makes the copy one self-contained file and checks it."""
    origin, copy = _connect(source), _connect(destination)
    try:
        _inspect(origin, source)
        origin.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside a backup
        info = _inspect(copy, destination)
        copy.commit()
    except sqlite3.Error as err:
        raise BackupFailed(f"the copy failed: {err}") from err
    finally:
        origin.close()
        copy.close()
    with destination.open("rb") as handle:
        os.fsync(handle.fileno())
    return info


def inspect_backup(path: Path, box: SecretBox | None = None) -> BackupInfo:
    """What a restore would bring: refused unless it is a sound Tokenward database with only the schema its
    migrations create and, given a box, every sealed secret in it opens with the box's keys (the key is
    never in a backup: a wrong one shows here)."""
    if not path.is_file():
        raise BackupFailed(f"no file {path}")
    connection = _connect(path, read_only=True)
    try:
        return _check_backup(connection, path, box)
    finally:
        connection.close()


def _check_backup(connection: sqlite3.Connection, shown: Path, box: SecretBox | None) -> BackupInfo:
    """`inspect_backup` on an open database, its failures naming `shown`."""
    info = _inspect(connection, shown)
    try:
        difference = schema_difference(schema_of(connection.execute(SCHEMA_QUERY)), info.revision)
    except DuplicateObject as err:
        difference = f"names the {err} twice"
    if difference is not None:
        raise BackupFailed(
            f"{shown} {difference} (at migration {info.revision}): a restore brings only Tokenward's own "
            "schema; restore a backup made by `tokenward backup`"
        )
    unreadable = 0 if box is None else _count_unreadable(connection, box)
    if unreadable:
        raise BackupFailed(
            f"{unreadable} secrets in {shown} do not open with the configured encryption key: configure "
            "the key(s) of the instance that made the backup (TOKENWARD_ENCRYPTION_KEY or "
            "<instance>/encryption.key, and TOKENWARD_OLD_ENCRYPTION_KEYS)"
        )
    return info


def _count_unreadable(connection: sqlite3.Connection, box: SecretBox) -> int:
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    unreadable = 0
    for sealed in SEALED_COLUMNS:
        if sealed.table_name not in tables:
            continue
        rows = connection.execute(
            f'SELECT "{sealed.id_column}", "{sealed.blob_column}" FROM "{sealed.table_name}" '  # noqa: S608 (names are ours)
            f'WHERE "{sealed.blob_column}" IS NOT NULL'
        )
        for row_id, blob in rows:
            try:
                box.open(blob, associated_data=sealed.associated_data(row_id))
            except SecretUnreadable:
                unreadable += 1
    return unreadable


def holds_accounts(path: Path) -> bool:
    """A database that people or clients already use (an empty or new one may be replaced freely)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            names = set(engine.dialect.get_table_names(connection))
            return any(
                connection.execute(select(1).select_from(table(name)).limit(1)).first() is not None
                for name in ACCOUNT_TABLES
                if name in names
            )
    finally:
        engine.dispose()


def restore_backup(backup: Path, target: Path, *, box: SecretBox, force: bool) -> BackupInfo:
    """Replaces the database at `target` with `backup` migrated to this version's schema; `target` is
    written only once a private copy of the backup has passed every check and been migrated."""
    inspect_backup(backup, box)  # read-only, and told by the backup's own name before anything is written
    if backup.resolve() == target.resolve():
        raise ValidationFailed("the backup is the instance's own database")
    if holds_accounts(target) and not force:
        raise Conflict(f"{target} already holds accounts; give --force to replace them with the backup")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{secrets.token_hex(4)}.restoring")
    os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        info = _stage(backup, staged, box)
        if not target.exists():
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _copy_pages(staged, target)  # in place: a server with the file open sees the restored pages
    finally:
        for leftover in (staged, *(staged.with_name(staged.name + end) for end in SQLITE_SIDE_FILES)):
            leftover.unlink(missing_ok=True)
    return info


def _stage(backup: Path, staged: Path, box: SecretBox) -> BackupInfo:
    """Copies `backup` to `staged`, checks the copy (what is checked is what is restored) and migrates it."""
    _copy_pages(backup, staged, read_only=True)
    connection = _connect(staged)
    try:
        info = _check_backup(connection, backup, box)
    finally:
        connection.close()
    engine = create_engine(f"sqlite:///{staged}")
    tune_sqlite(engine)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    return info


def _copy_pages(source: Path, destination: Path, *, read_only: bool = False) -> None:
    origin, copy = _connect(source, read_only=read_only), _connect(destination)
    try:
        origin.backup(copy)
    except sqlite3.Error as err:
        raise BackupFailed(f"the restore failed: {err}") from err
    finally:
        origin.close()
        copy.close()
