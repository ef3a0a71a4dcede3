"""OpenID Connect: codes name the browser session they were issued from; sessions the scope granted

- `oidc_codes.source_family_id`: the signed-in session family the authorization request was answered from;
  a code whose session has ended (logout, password reset or change, revocation) is refused at redemption.
  Codes issued before this revision (at most a minute old) have none and are refused: the client asks again.
- `session_families.oidc_scope`: the OpenID Connect scope a relying party's session was granted (None for
  every other session): only such a session refreshes at `/oauth2/token`, never with a broader scope.
  Filled in for the relying-party sessions whose code is still kept; one older than that has none, and
  its client signs the user in again.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_codes") as batch:
        batch.add_column(sa.Column("source_family_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("session_families") as batch:
        batch.add_column(sa.Column("oidc_scope", sa.String(length=255), nullable=True))
    op.execute(
        "UPDATE session_families SET oidc_scope = "
        "(SELECT MIN(oidc_codes.scope) FROM oidc_codes WHERE oidc_codes.family_id = session_families.id) "
        "WHERE id IN (SELECT family_id FROM oidc_codes)"
    )


def downgrade() -> None:
    with op.batch_alter_table("session_families") as batch:
        batch.drop_column("oidc_scope")
    with op.batch_alter_table("oidc_codes") as batch:
        batch.drop_column("source_family_id")
