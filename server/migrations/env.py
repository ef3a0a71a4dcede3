"""Alembic environment: runs against the engine handed over in `config.attributes`.

Several nodes may start at once: on PostgreSQL an advisory lock lets one migrate while the others wait and
then find nothing to do; on SQLite every transaction begins IMMEDIATE, which serialises them the same way.
"""

from alembic import context
from sqlalchemy import text

from server import models  # noqa: F401  (registers the tables)
from server.db import Base

MIGRATION_LOCK_ID = 0x746F6B656E77  # "tokenw"

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()
    connection.commit()
