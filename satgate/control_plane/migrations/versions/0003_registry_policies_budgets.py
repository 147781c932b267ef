"""The admin API's state: the token registry, trust policies managed by API (every version kept), budget changes,
and each delegation's budget bucket.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("policy", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("budget_credits", sa.BigInteger),
        sa.Column("bucket_id", sa.Text),
        sa.Column("scopes", sa.Text),
        sa.Column("expires_at", sa.Text),
    )
    op.create_index("tokens_by_time", "tokens", ["tenant", "issued_at"])
    with op.batch_alter_table("delegations") as table:
        table.add_column(sa.Column("bucket_id", sa.Text))
    op.create_table(
        "policy_versions",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("document", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.UniqueConstraint("name", "version", name="policy_versions_once"),
    )
    op.create_table(
        "budget_changes",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text, nullable=False),
        sa.Column("bucket_id", sa.Text, nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    op.create_index("budget_changes_by_target", "budget_changes", ["tenant", "target_id"])


def downgrade() -> None:
    op.drop_index("budget_changes_by_target", "budget_changes")
    op.drop_table("budget_changes")
    op.drop_table("policy_versions")
    with op.batch_alter_table("delegations") as table:
        table.drop_column("bucket_id")
    op.drop_index("tokens_by_time", "tokens")
    op.drop_table("tokens")
