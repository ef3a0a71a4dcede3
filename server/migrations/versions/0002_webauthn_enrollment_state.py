"""WebAuthn registration state on the pending token

A security key's registration ceremony is begun and completed in two requests, possibly on two nodes; its
state (the challenge) lives with the pending token it will activate, and is cleared when used.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.add_column(sa.Column("enrollment_state", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.drop_column("enrollment_state")
