"""Alembic environment: runs against the engine handed over in `config.attributes`."""

from alembic import context

from server import models  # noqa: F401  (registers the tables)
from server.db import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
