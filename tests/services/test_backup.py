"""Backup and restore checks, in-process: what a restore refuses, and what it migrates forward."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import time
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
