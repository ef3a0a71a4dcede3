"""Alembic migrations. `upgrade_schema` brings any database up to date; `tokenward serve` and every console
command run it first.

Migrations are numbered (`0007_…py` holds revision "0007", its down revision the number before): the newest
number is the head, so a database already there is recognised without importing Alembic (a tenth of a
console command's start)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    return max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def schema_is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no table yet: a new database
        return False
    return versions == [head_revision()]


def upgrade_schema(engine: Engine) -> None:
    if schema_is_current(engine):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def known_revisions() -> set[str]:
    """Every migration this version of Tokenward knows (a database at one of them can be brought to head)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(HERE))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
