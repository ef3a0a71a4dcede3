"""Root fixtures: a fresh app per test on SQLite, or on PostgreSQL when `TOKENWARD_TEST_DATABASE_URL` is set.

Both migrate once per run (per worker under pytest-xdist): SQLite into a template file that each test
copies, PostgreSQL into a schema of the run's own (created at start, dropped at the end) whose tables are
emptied before each test. A set URL that cannot be reached fails the run instead of skipping tests.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.db import Base, db
from server.migrations import upgrade_schema
from server.services.runtime import Runtime
from tests import type_check
from tests.accounts import Accounts, LoginFormClient, dispose_app, with_search_path
from tests.e2e.serve_process import CHEAP_PASSWORD_HASHING

# A fixed start keeps oathtool's `--now` and the server in step; tests move the clock, never sleep.
START_TIME = 1_750_000_000.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fob-port",
        default=None,
        help="run the fob driver tests against this serial port (a bench fob) instead of the emulator",
    )


def pytest_configure(config: pytest.Config) -> None:
    """A whole-suite run (no file, test or -k/-m chosen) starts mypy at once, beside the tests."""
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    chosen = config.option.keyword or config.option.markexpr or config.option.collectonly
    if whole_suite and not chosen:
        type_check.start()


def _unusable_database(err: Exception) -> NoReturn:
    pytest.exit(f"TOKENWARD_TEST_DATABASE_URL is set but unusable: {type(err).__name__}: {err}", returncode=3)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A set URL that cannot be reached ends the run with its reason before any test (or pytest-xdist
    worker, whose own exit would only be reported as a crash) starts."""
    base_url = os.environ.get("TOKENWARD_TEST_DATABASE_URL")
    if not base_url:
        return
    try:
        engine = create_engine(base_url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as err:
        _unusable_database(err)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A per-run schema on the configured PostgreSQL, as a URL every process (tests and servers) can use.
    Under pytest-xdist each worker is a run of its own: its own schema, migrated and dropped by it."""
    base_url = os.environ.get("TOKENWARD_TEST_DATABASE_URL")
    if not base_url:
        yield None
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"tw_test_{worker}_{secrets.token_hex(4)}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as err:
        admin.dispose()
        _unusable_database(err)
    url = with_search_path(base_url, schema)
    engine = create_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    yield url
    _run_engine(url).dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_tables(url: str) -> None:
    """Every row deleted, children first: on tables this small a DELETE takes 4 ms where a TRUNCATE takes
    45 (it makes new files for every table and index). Identity columns keep counting: no test reads one."""
    with _run_engine(url).begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@functools.cache
def _run_engine(url: str) -> Engine:
    """The run's own connection to its schema (one connection: its pool's others are never needed)."""
    return create_engine(url, pool_size=1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated once per run, which each test copies (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tokenward.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    """An empty, migrated database for this test."""
    if postgres_url is not None:
        _empty_tables(postgres_url)
        return postgres_url
    path = tmp_path / "tokenward.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START_TIME)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Rate limits are off here so that tests may sign in often; the rate-limit tests turn them on."""
    return Settings(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        rate_limits=RateLimits.parse("off"),
        encryption_key=secrets.token_hex(32),
        **CHEAP_PASSWORD_HASHING,  # type: ignore[arg-type]
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    application = create_app(settings, clock=clock)
    application.test_client_class = LoginFormClient
    yield application
    dispose_app(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def rt(app: Flask) -> Iterator[Runtime]:
    """The runtime, inside an app context (for service-level tests)."""
    with app.app_context():
        yield app.extensions["tokenward"]
        db.session.remove()


@pytest.fixture
def accounts(app: Flask, client: FlaskClient, clock: FrozenClock) -> Accounts:
    return Accounts(app, client, clock)


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
