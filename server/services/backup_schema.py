"""A backup's schema against the one Tokenward's migrations create, so that a restore brings data, never code.

SQLite keeps triggers and views in the database file, where they act with the server's rights: a trigger
planted in a backup would run on every later write (`UPDATE users SET role='admin' …`). A restore accepts
only the schema objects (sqlite_master's type, name, table and SQL) that the migrations create at the
backup's own revision, each exactly as they define it: an extra trigger, view, table or index is refused,
and so is one of ours whose definition differs (a table without its CHECK or UNIQUE) or that is missing.
The reference is an empty in-memory database migrated to that revision, once per revision and process.

SQL is compared with what SQLAlchemy's layout and SQLite's versions vary in taken out: whitespace and the
double quotes around identifiers. SQLite's statistics tables (ANALYZE) pass when they are SQLite's own.
Settings in the file's header (user_version, application_id, page_size, auto_vacuum, encoding) change
nothing the server relies on; the server sets journal_mode on every connection, and foreign_keys,
trusted_schema and recursive_triggers are per connection, never stored in the file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from server.migrations import alembic_config

SCHEMA_QUERY = "SELECT type, name, tbl_name, sql FROM sqlite_master"
# SQLite's own tables that ANALYZE may leave in a genuine database (they steer query plans only).
SQLITE_STATISTICS = {
    ("table", "sqlite_stat1"): "CREATE TABLE sqlite_stat1(tbl,idx,stat)",
    ("table", "sqlite_stat4"): "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)",
}
NAME_SHOWN_MAX_CHARS = 64  # a name is the backup's to choose: shown escaped and cut

ObjectKey = tuple[str, str]  # (type, name)
Definition = tuple[str, str]  # (table it belongs to, normalised SQL; "" for SQLite's automatic indexes)


class DuplicateObject(ValueError):
    """sqlite_master names one object twice (only a hand-edited schema can)."""


def normalised_sql(sql: str | None) -> str:
    """The SQL without layout: runs of whitespace as one space, none beside parentheses and commas, and
    identifiers unquoted (SQLite writes `CREATE TABLE "users"` after a rename, SQLAlchemy `users`)."""
    if sql is None:
        return ""
    text = re.sub(r"\s+", " ", sql.replace('"', "")).strip()
    text = re.sub(r" ?([(),]) ?", r"\1", text)
    return _sorted_table_body(text) if text.startswith("CREATE TABLE ") else text


def _sorted_table_body(sql: str) -> str:
    """A CREATE TABLE with its columns and constraints in sorted order: Alembic's batch mode writes the
    constraints of a table it recreates in an order that varies from one run to the next."""
    items: list[str] = []
    depth, quoted, body_start, item_start = 0, False, 0, 0
    for index, char in enumerate(sql):
        if char == "'":
            quoted = not quoted  # '' inside a literal toggles twice
        elif quoted:
            continue
        elif char == "(":
            depth += 1
            if depth == 1:  # the body's own parenthesis: once, as the body ends at its close
                body_start = item_start = index + 1
        elif char == "," and depth == 1:
            items.append(sql[item_start:index])
            item_start = index + 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                items.append(sql[item_start:index])
                return sql[:body_start] + ",".join(sorted(items)) + sql[index:]
    return sql  # unbalanced: compared as it is


def schema_of(rows: Iterable[Sequence[Any]]) -> dict[ObjectKey, Definition]:
    """sqlite_master's rows (type, name, tbl_name, sql) by object."""
    schema: dict[ObjectKey, Definition] = {}
    for kind, name, table, sql in rows:
        key = (str(kind), str(name))
        if key in schema:
            raise DuplicateObject(shown_object(key))
        schema[key] = (str(table), normalised_sql(sql))
    return schema


@functools.lru_cache(maxsize=8)
def expected_schema(revision: str) -> Mapping[ObjectKey, Definition]:
    """What Tokenward's migrations create, from nothing up to `revision`."""
    from alembic import command

    engine = create_engine("sqlite://", poolclass=StaticPool)  # one in-memory database for every connection
    try:
        command.upgrade(alembic_config(engine), revision)
        with engine.connect() as connection:
            return schema_of(connection.exec_driver_sql(SCHEMA_QUERY).all())
    finally:
        engine.dispose()


def schema_difference(actual: Mapping[ObjectKey, Definition], revision: str) -> str | None:
    """What in `actual` the migrations at `revision` do not create as it is, or what of theirs it lacks: a
    phrase naming the object by type and name (never its SQL), or None when the schemas are the same."""
    expected = expected_schema(revision)
    statistics = {key: (key[1], normalised_sql(sql)) for key, sql in SQLITE_STATISTICS.items()}
    for key, definition in sorted(actual.items()):
        wanted = expected.get(key, statistics.get(key))
        if wanted is None:
            return f"holds the {shown_object(key)}, which Tokenward's migrations do not create"
        if definition != wanted:
            return f"holds the {shown_object(key)}, unlike the one Tokenward's migrations create"
    missing = sorted(expected.keys() - actual.keys())
    return f"lacks the {shown_object(missing[0])}, which Tokenward's migrations create" if missing else None


def shown_object(key: ObjectKey) -> str:
    """`trigger 'backdoor'`: the type and the name, escaped (no control character reaches a terminal)."""
    kind, name = key
    cut = name if len(name) <= NAME_SHOWN_MAX_CHARS else name[:NAME_SHOWN_MAX_CHARS] + "..."
    return f"{ascii(kind)[1:-1][:16]} {cut!a}"
