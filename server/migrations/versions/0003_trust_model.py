"""Trust model: session families, clients, recovery and temporary codes, self-releasing locks

- `session_families`: one row per sign-in, the single place it is revoked (replaces the per-token revocation
  markers of `revoked_access_tokens`); it carries the session's amr, acr, scope, auth_time and client.
- `clients`: registered relying parties (client_id, hashed secret, audience, allowed methods).
- `recovery_codes`, `temporary_codes`: hashed single-use codes.
- `ratelimit_counters`: the `database://` rate-limit storage, shared by a node's workers (and nodes).
- `users.factor_enrolled_at`, `tokens.locked_until` / `lock_count`, `transactions.client_id` /
  `decoy` / `replaces_family`.

Existing sessions are carried over: each refresh-token family becomes a session family (revoked when every
token of it was revoked or a revocation marker named it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_salt", sa.LargeBinary(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=False),
        sa.Column("allowed_methods", sa.String(length=64), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("required_acr", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_clients_name")),
    )
    op.create_table(
        "ratelimit_counters",
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ratelimit_counters")),
    )
    with op.batch_alter_table("ratelimit_counters") as batch_op:
        batch_op.create_index(batch_op.f("ix_ratelimit_counters_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "session_families",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("amr", sa.String(length=64), nullable=False),
        sa.Column("acr", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_families_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_session_families_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_families")),
    )
    with op.batch_alter_table("session_families") as batch_op:
        batch_op.create_index(batch_op.f("ix_session_families_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_families_expires_at"), ["expires_at"], unique=False)
    for name in ("recovery_codes", "temporary_codes"):
        extra: list[sa.Column[object]] = (
            [
                sa.Column("issued_by", sa.String(length=64), nullable=False),
                sa.Column("expires_at", sa.Float(), nullable=False),
            ]
            if name == "temporary_codes"
            else []
        )
        op.create_table(
            name,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("code_hash", sa.String(length=64), nullable=False),
            *extra,
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("used_at", sa.Float(), nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name=op.f(f"fk_{name}_user_id_users"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
            sa.UniqueConstraint("code_hash", name=op.f(f"uq_{name}_code_hash")),
        )
        with op.batch_alter_table(name) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{name}_user_id"), ["user_id"], unique=False)

    op.execute(
        """
        INSERT INTO session_families (id, user_id, client_id, amr, acr, scope, auth_time, created_at,
                                      expires_at, revoked_at)
        SELECT r.family_id, MIN(r.user_id), NULL, MAX(r.amr),
               CASE WHEN MAX(r.amr) LIKE '%mfa%' THEN 'mfa' ELSE 'single-factor' END,
               MAX(r.scope), MIN(r.auth_time), MIN(r.created_at), MAX(r.expires_at) + 86400,
               CASE WHEN COUNT(r.revoked_at) = COUNT(*)
                      OR EXISTS (SELECT 1 FROM revoked_access_tokens m WHERE m.family_id = r.family_id)
                    THEN MAX(r.created_at) END
        FROM refresh_tokens r GROUP BY r.family_id
        """
    )
    with op.batch_alter_table("refresh_tokens") as batch_op:
        for column in ("amr", "scope", "auth_time", "revoked_at"):
            batch_op.drop_column(column)
    with op.batch_alter_table("revoked_access_tokens") as batch_op:
        batch_op.drop_index(batch_op.f("ix_revoked_access_tokens_expires_at"))
    op.drop_table("revoked_access_tokens")

    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("factor_enrolled_at", sa.Float(), nullable=True))
    op.execute(
        "UPDATE users SET factor_enrolled_at = created_at WHERE EXISTS "
        "(SELECT 1 FROM tokens t WHERE t.user_id = users.id AND t.state <> 'pending')"
    )
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.add_column(sa.Column("locked_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lock_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("decoy", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("replaces_family", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_transactions_client_id_clients"),
            "clients",
            ["client_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    """Back to 0002: sessions end (the old tables cannot say which were revoked); clients and codes go."""
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_transactions_client_id_clients"), type_="foreignkey")
        batch_op.drop_column("replaces_family")
        batch_op.drop_column("decoy")
        batch_op.drop_column("client_id")
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.drop_column("lock_count")
        batch_op.drop_column("locked_until")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("factor_enrolled_at")
    op.execute("DELETE FROM refresh_tokens")
    with op.batch_alter_table("refresh_tokens") as batch_op:
        batch_op.add_column(sa.Column("amr", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("scope", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("auth_time", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("revoked_at", sa.Float(), nullable=True))
    op.create_table(
        "revoked_access_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_access_tokens")),
    )
    with op.batch_alter_table("revoked_access_tokens") as batch_op:
        batch_op.create_index(batch_op.f("ix_revoked_access_tokens_expires_at"), ["expires_at"], unique=False)
    for name in ("temporary_codes", "recovery_codes", "session_families", "clients", "ratelimit_counters"):
        op.drop_table(name)
