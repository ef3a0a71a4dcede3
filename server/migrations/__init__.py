"""Alembic migrations. `upgrade_schema` brings any database up to date; `tokenward serve` runs it first."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def known_revisions() -> set[str]:
    """Every migration this version of Tokenward knows (a database at one of them can be brought to head)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(HERE))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
