"""`tokenward backup FILE` and `tokenward restore FILE`: copies of the SQLite database, made and put back."""

from __future__ import annotations

import time
from pathlib import Path

import click

from provisioning.console import CONSOLE_ACTOR, fail, out, print_json, settings_from_env
from server.errors import TokenwardError
from server.services.crypto import load_existing_key, secret_box

TARGET_MAX_CHARS = 128  # the audit log's target column


def _audit(database: Path, *, action: str, result: str, target: str, reason: str = "") -> None:
    """An audit event in the database at `database` (the instance's own, once it is in place)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from server.db import tune_sqlite
    from server.services.audit import record_event

    target = target[-TARGET_MAX_CHARS:]  # a long path keeps its file name
    engine = create_engine(f"sqlite:///{database}")
    tune_sqlite(engine)
    try:
        with Session(engine) as session:
            record_event(
                session,
                actor=CONSOLE_ACTOR,
                action=action,
                result=result,
                target=target,
                reason=reason,
                now=time.time(),
            )
            session.commit()
    finally:
        engine.dispose()


def _audit_failure(database: Path, *, action: str, target: str, reason: str) -> None:
    """A failure is audited in the instance's database when there is one (a PostgreSQL URL or a missing
    file has none that this command may write to)."""
    from sqlalchemy.exc import SQLAlchemyError

    if not database.is_file():
        return
    try:
        _audit(database, action=action, result="failure", target=target, reason=reason)
    except SQLAlchemyError:
        return  # not a Tokenward database: nowhere to audit, and the failure is reported all the same


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def backup(file: Path, force: bool, as_json: bool) -> None:
    """Write a consistent copy of the SQLite database to FILE, also while the server runs.

    The copy holds sealed secrets and password hashes (keep it private) but never the encryption key:
    keep that apart. On PostgreSQL use pg_dump instead.
    """
    from server.services.backup import sqlite_path, write_backup

    settings = settings_from_env()
    database = Path()
    try:
        database = sqlite_path(settings.sqlalchemy_url)
        info = write_backup(database, file, overwrite=force)
    except TokenwardError as err:
        _audit_failure(database, action="backup.write", target=str(file.resolve()), reason=err.code)
        fail(err.detail)
    _audit(database, action="backup.write", result="success", target=str(file.resolve()))
    if as_json:
        print_json({"file": str(file), "revision": info.revision, "users": info.users, "tokens": info.tokens})
    else:
        out.print(
            f"backup of {info.users} users and {info.tokens} tokens (migration {info.revision}) in {file}",
            markup=False,
        )


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds users, tokens or clients.")
def restore(file: Path, force: bool) -> None:
    """Put a backup made by `tokenward backup` in place of this instance's database.

    The backup is checked first: a Tokenward database at a migration this version knows, whose secrets
    open with the configured encryption key (the backed-up instance's key). It is then migrated forward.
    Stop the server while restoring.
    """
    from server.services.backup import inspect_backup, restore_backup, sqlite_path

    settings = settings_from_env()
    database = Path()
    try:
        database = sqlite_path(settings.sqlalchemy_url)
        inspect_backup(file)  # a file that is no backup is told so before any question of keys
        key = load_existing_key(settings.instance_dir.resolve(), settings.encryption_key)
        if key is None:
            fail(
                "no encryption key: set TOKENWARD_ENCRYPTION_KEY to the backed-up instance's key, or put its "
                f"key file at {settings.instance_dir.resolve() / 'encryption.key'}"
            )
        info = restore_backup(file, database, box=secret_box(settings, key), force=force)
    except TokenwardError as err:
        _audit_failure(database, action="backup.restore", target=str(file.resolve()), reason=err.code)
        fail(err.detail)
    _audit(database, action="backup.restore", result="success", target=str(file.resolve()))
    out.print(
        f"restored {info.users} users and {info.tokens} tokens from {file} (made at migration "
        f"{info.revision}, now migrated to this version)",
        markup=False,
    )
