"""A decoy transaction keeps the name it was started for, so that its answers count against that name's
rate limit as a real user's answers do (otherwise the limit tells real names from unknown ones)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transactions", sa.Column("decoy_username", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("decoy_username")
