"""Directory users: where a user comes from and the directory's stable id for them

- `users.source`: `local` (password in this database) or `ldap` (a directory checks the password);
  every existing user is local.
- `users.external_id`: the directory's stable id (entryUUID, objectGUID), unique per source, so a user
  renamed in the directory keeps their row and tokens.
- `users.display_name`, `users.email`: copied from the directory at sign-in and sync.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="local"))
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("display_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_source"), ["source", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_source"), type_="unique")
        batch_op.drop_column("email")
        batch_op.drop_column("display_name")
        batch_op.drop_column("external_id")
        batch_op.drop_column("source")
