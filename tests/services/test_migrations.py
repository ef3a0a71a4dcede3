"""The numbered-migration convention that lets a current database skip Alembic at start."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from server.migrations import HERE, alembic_config, head_revision, schema_is_current, upgrade_schema


def test_the_newest_number_is_alembics_single_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db'}")
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    assert scripts.get_heads() == [head_revision()]
    for script in scripts.walk_revisions():
        number = int(script.revision)
        assert Path(script.path).name.startswith(f"{script.revision}_")
        assert script.down_revision == (f"{number - 1:04d}" if number > 1 else None)
    names = [p.name for p in (HERE / "versions").glob("*.py") if p.name != "__init__.py"]
    assert all(re.fullmatch(r"\d{4}_\w+\.py", name) for name in names), names


def test_a_new_database_is_migrated_and_then_recognised_as_current(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db'}")
    assert not schema_is_current(engine)
    upgrade_schema(engine)
    assert schema_is_current(engine)
    with engine.begin() as connection:  # a database one migration behind is brought forward again
        connection.execute(
            text("UPDATE alembic_version SET version_num = :v"), {"v": f"{int(head_revision()) - 1:04d}"}
        )
    assert not schema_is_current(engine)
    engine.dispose()
