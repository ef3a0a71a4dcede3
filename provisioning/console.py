"""What every console command shares: an app context on an up-to-date schema, and one-line failures."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console

from server.config import Settings
from server.errors import ConfigurationError, TokenwardError
from server.services.actors import Actor

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from server.services.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
KEY_FILE = "encryption.key"  # server.services.crypto.KEY_FILE, not imported: it brings the cryptography stack
SCHEMA_VERSION_TABLE = "alembic_version"  # Alembic's, in every migrated Tokenward database

out = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
CONSOLE_ACTOR = Actor.console()


def fail(message: str) -> NoReturn:
    """Exits non-zero with one line on stderr (never a traceback for an expected error)."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    sys.exit(1)


def settings_from_env(*, default_public_url: str | None = None) -> Settings:
    try:
        return Settings.from_env(default_public_url=default_public_url)
    except ConfigurationError as err:
        fail(err.detail)


def missing_database(settings: Settings) -> str | None:
    """Where the SQLite database should be, when it is not there (None when it is, or not SQLite)."""
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    url = make_url(settings.sqlalchemy_url)
    if not url.database or url.database == ":memory:":
        return None
    return None if Path(url.database).exists() else url.database


def missing_instance(settings: Settings) -> str | None:
    """What an existing instance would have and this one lacks: its database file, or the key its secrets
    are sealed with (a new key would make them unreadable)."""
    if (database := missing_database(settings)) is not None:
        return f"no Tokenward database at {database}"
    key_file = settings.instance_dir.resolve() / KEY_FILE
    if not settings.encryption_key and not key_file.exists():
        return f"no encryption key at {key_file} (nor TOKENWARD_ENCRYPTION_KEY)"
    return None


WHERE_IS_IT = (
    "run this where the server runs, or say where it is with --config FILE, TOKENWARD_CONFIG, "
    "TOKENWARD_INSTANCE_DIR or TOKENWARD_DATABASE_URL (`tokenward serve` and `tokenward user add` create it)"
)


@contextmanager
def service_context(
    settings: Settings | None = None, *, create: bool = False, check_key: bool = True
) -> Iterator[Runtime]:
    """An app context on a migrated database; yields the runtime the services take. Ends the command with
    one line when the instance is missing (unless `create`: a console run from the wrong directory must not
    make a new one), when the database does not answer, or when the configured encryption key cannot open
    its secrets (unless `check_key` is off: a command that changes the key)."""
    settings = settings or settings_from_env()
    if not create and (missing := missing_instance(settings)) is not None:
        fail(f"{missing}: {WHERE_IS_IT}")
    # Imported here, not at the top: the services and Alembic, which a command's `--help`, or one that only
    # talks to a device (`fob respond`), should not wait for.
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from server.app import create_app
    from server.db import current_session, db
    from server.migrations import upgrade_schema
    from server.services.key_check import check_encryption_key

    try:
        app = create_app(settings, http=False)
    except TokenwardError as err:
        fail(err.detail)
    with app.app_context(), _closed_afterwards(db, app.extensions["tokenward"]):
        try:
            if not create and not inspect(db.engine).has_table(SCHEMA_VERSION_TABLE):
                shown_url = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
                fail(f"the database {shown_url} has no Tokenward tables: {WHERE_IS_IT}")
            upgrade_schema(db.engine)
            rt: Runtime = app.extensions["tokenward"]
            if check_key:
                check_encryption_key(current_session(), rt.box)
        except TokenwardError as err:
            fail(err.detail)
        except (OperationalError, InterfaceError) as err:
            fail(database_failure(err))
        except DBAPIError as err:  # the driver refused the URL's options, say
            fail(database_failure(err).replace("is not reachable", "cannot be used", 1))
        try:
            yield rt  # the command's own errors are its to word (`expected_errors`, a file's name first…)
        except (OperationalError, InterfaceError) as err:  # the database stopped answering mid-way
            fail(database_failure(err))


@contextmanager
def _closed_afterwards(db: SQLAlchemy, rt: Runtime) -> Iterator[None]:
    """The command's connections closed when its context ends (`radius serve` forks its workers after):
    the database's, and the directory's pooled ones."""
    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()
        if rt.directories.external is not None:
            rt.directories.external.close()


def database_failure(err: Exception) -> str:
    """One line for a database that could not be used: the driver's first line (never the URL, whose
    password psycopg does not repeat)."""
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()
    return f"the database is not reachable: {reason[0] if reason else type(err).__name__}"


def expected_errors(command: F) -> F:
    """Turns the services' typed errors into a one-line failure."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TokenwardError as err:
            fail(err.detail)

    return run  # type: ignore[return-value]


def wants_progress(progress: bool | None, *, as_json: bool) -> bool:
    """A --progress/--no-progress choice; unset, progress shows at a terminal unless the output is JSON."""
    return sys.stderr.isatty() and not as_json if progress is None else progress


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
