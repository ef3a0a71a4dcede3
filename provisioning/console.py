"""What every console command shares: an app context on an up-to-date schema, and one-line failures."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console

from server.config import Settings
from server.errors import ConfigurationError, TokenwardError
from server.services.actors import Actor

if TYPE_CHECKING:
    from server.services.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
CONSOLE_ACTOR = Actor.console()


def fail(message: str) -> NoReturn:
    """Exits non-zero with one line on stderr (never a traceback for an expected error)."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    sys.exit(1)


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as err:
        fail(err.detail)


@contextmanager
def service_context() -> Iterator[Runtime]:
    """An app context on a migrated database; yields the runtime the services take."""
    # Imported here, not at the top: the app brings the whole HTTP layer and Alembic, which a command's
    # `--help`, or one that only talks to a device (`fob respond`), should not wait for.
    from server.app import create_app
    from server.db import db
    from server.migrations import upgrade_schema

    app = create_app(settings_from_env())
    with app.app_context():
        upgrade_schema(db.engine)
        yield app.extensions["tokenward"]


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
