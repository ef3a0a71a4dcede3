"""Backup and restore checks, in-process: what a restore refuses, and what it migrates forward."""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.errors import Conflict
from server.migrations import alembic_config
from server.services.backup import (
    BackupFailed,
    holds_accounts,
    restore_backup,
    sqlite_path,
    write_backup,
)
from server.services.crypto import SecretBox
from tests.accounts import Accounts, LoginFormClient, dispose_app

KEY = secrets.token_bytes(32)


@pytest.fixture
def live_database(tmp_path: Path, sqlite_template: Path) -> Path:
    """A SQLite instance with a user, an active token and a signing key, sealed with KEY."""
    path = tmp_path / "live" / "tokenward.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    clock = FrozenClock(time.time())
    settings = Settings(
        instance_dir=path.parent,
        database_url=f"sqlite:///{path}",
        rate_limits=RateLimits.parse("off"),
        encryption_key=KEY.hex(),
    )
    app = create_app(settings, clock=clock)
    app.test_client_class = LoginFormClient
    try:
        Accounts(app, app.test_client(), clock).user_with_phone("alice")
    finally:
        dispose_app(app)
    return path


def test_postgresql_and_memory_are_refused_with_advice() -> None:
    with pytest.raises(BackupFailed, match="pg_dump"):
        sqlite_path("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with pytest.raises(BackupFailed, match="in memory"):
        sqlite_path("sqlite://")
    assert sqlite_path("sqlite:////var/lib/tokenward/tokenward.db") == Path("/var/lib/tokenward/tokenward.db")


def test_backup_refuses_a_missing_database_and_an_existing_file(tmp_path: Path, live_database: Path) -> None:
    with pytest.raises(BackupFailed, match="no database"):
        write_backup(tmp_path / "none.db", tmp_path / "copy.db")
    (tmp_path / "copy.db").write_bytes(b"keep me")
    with pytest.raises(BackupFailed, match="--force"):
        write_backup(live_database, tmp_path / "copy.db")
    assert (tmp_path / "copy.db").read_bytes() == b"keep me"
    assert write_backup(live_database, tmp_path / "copy.db", overwrite=True).tokens == 1


def test_restore_checks_the_key_the_file_and_the_target(tmp_path: Path, live_database: Path) -> None:
    backup = write_backup(live_database, tmp_path / "backup.db").path
    target = tmp_path / "fresh" / "tokenward.db"
    with pytest.raises(BackupFailed, match="do not open with the configured encryption key"):
        restore_backup(backup, target, box=SecretBox(secrets.token_bytes(32)), force=False)
    assert not target.exists()

    not_ours = tmp_path / "other.db"
    with closing(sqlite3.connect(not_ours)) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.commit()
    with pytest.raises(BackupFailed, match="not a Tokenward database"):
        restore_backup(not_ours, target, box=SecretBox(KEY), force=False)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(secrets.token_bytes(8192))
    with pytest.raises(BackupFailed, match="not a SQLite database"):
        restore_backup(garbage, target, box=SecretBox(KEY), force=False)

    future = tmp_path / "future.db"
    shutil.copyfile(backup, future)
    with closing(sqlite3.connect(future)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
        connection.commit()
    with pytest.raises(BackupFailed, match=r"does not know \(9999\)"):
        restore_backup(future, target, box=SecretBox(KEY), force=False)

    assert restore_backup(backup, target, box=SecretBox(KEY), force=False).users == 1
    assert holds_accounts(target)
    with pytest.raises(Conflict, match="--force"):
        restore_backup(backup, target, box=SecretBox(KEY), force=False)
    restore_backup(backup, target, box=SecretBox(KEY), force=True)


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as connection:
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(revision)


def test_a_backup_from_an_older_migration_is_migrated_forward(tmp_path: Path, sqlite_template: Path) -> None:
    older = tmp_path / "older.db"
    engine = create_engine(f"sqlite:///{older}")
    command.upgrade(alembic_config(engine), "0005")
    engine.dispose()
    target = tmp_path / "fresh" / "tokenward.db"
    assert restore_backup(older, target, box=SecretBox(KEY), force=False).revision == "0005"
    assert _revision(target) == _revision(sqlite_template) != "0005"  # the head of this version


def _without_unique_username(connection: sqlite3.Connection) -> None:
    """Recreates `users` without its UNIQUE(username), as a hand-edited backup would."""
    [(sql,)] = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'users'").fetchall()
    weaker = re.sub(r",\s*CONSTRAINT uq_users_username UNIQUE \(username\)", "", sql)
    assert weaker != sql
    connection.execute(weaker.replace('"users"', "users_weaker", 1))
    connection.execute("INSERT INTO users_weaker SELECT * FROM users")
    connection.execute("DROP TABLE users")
    connection.execute("ALTER TABLE users_weaker RENAME TO users")


HOSTILE_SCHEMAS: dict[str, tuple[str | Callable[[sqlite3.Connection], None], str]] = {
    "trigger": (
        "CREATE TRIGGER backdoor AFTER INSERT ON session_families "
        "BEGIN UPDATE users SET role='admin' WHERE id=NEW.user_id; END",
        r"holds the trigger 'backdoor', which Tokenward's migrations do not create",
    ),
    "view": (
        "CREATE VIEW admins AS SELECT username FROM users WHERE role = 'admin'",
        r"holds the view 'admins', which Tokenward's migrations do not create",
    ),
    "table": (
        'CREATE TABLE "notes\nerror: all fine" (body TEXT)',
        r"holds the table 'notes\\nerror: all fine', which Tokenward's migrations do not create",
    ),
    "index": (
        "CREATE INDEX ix_users_role ON users (role)",
        r"holds the index 'ix_users_role', which Tokenward's migrations do not create",
    ),
    "changed table": (
        _without_unique_username,
        r"holds the table 'users', unlike the one Tokenward's migrations create",
    ),
    "missing index": (
        "DROP INDEX ix_tokens_user_id",
        r"lacks the index 'ix_tokens_user_id', which Tokenward's migrations create",
    ),
}


@pytest.mark.parametrize("change", HOSTILE_SCHEMAS, ids=str)
def test_a_backup_with_a_schema_of_its_own_is_refused(
    tmp_path: Path, sqlite_template: Path, change: str
) -> None:
    """Triggers and views run with the server's rights: a backup brings data and only Tokenward's own
    schema, or the target stays as it was (even with force)."""
    statement, expected_message = HOSTILE_SCHEMAS[change]
    hostile = tmp_path / "hostile.db"
    shutil.copyfile(sqlite_template, hostile)
    with closing(sqlite3.connect(hostile)) as connection:
        if callable(statement):
            statement(connection)
        else:
            connection.execute(statement)
        connection.commit()
    target = tmp_path / "live" / "tokenward.db"
    target.parent.mkdir()
    shutil.copyfile(sqlite_template, target)
    before = target.read_bytes()

    with pytest.raises(BackupFailed, match=expected_message) as refused:
        restore_backup(hostile, target, box=SecretBox(KEY), force=True)
    assert "\n" not in refused.value.detail  # one line, whatever the names
    assert "CREATE" not in refused.value.detail and "UPDATE" not in refused.value.detail  # no SQL shown
    assert target.read_bytes() == before
    assert sorted(path.name for path in target.parent.iterdir()) == ["tokenward.db"]


def test_a_genuine_backup_analysed_and_vacuumed_still_restores(tmp_path: Path, sqlite_template: Path) -> None:
    """What SQLite itself adds to a genuine database (ANALYZE's statistics) and a layout SQLite rewrites
    (VACUUM) are no schema of the backup's own."""
    backup = tmp_path / "analysed.db"
    shutil.copyfile(sqlite_template, backup)
    with closing(sqlite3.connect(backup)) as connection:
        connection.execute("ANALYZE")
        connection.commit()
        connection.execute("VACUUM")
    target = tmp_path / "fresh" / "tokenward.db"
    assert restore_backup(backup, target, box=SecretBox(KEY), force=False).users == 0
    assert _revision(target) == _revision(sqlite_template)
    assert sorted(path.name for path in target.parent.iterdir()) == ["tokenward.db"]
