"""The Mint's state as it was in mint.db: delegations, revoked policies, used one-time signatures.

Tables are created only where missing, so a mint.db written before migrations existed is adopted as it is.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("delegation_id", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Text, nullable=False),
        sa.Column("parent_delegation_id", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("budget_credits", sa.BigInteger),
        sa.Column("scopes", sa.Text),
        sa.Column("expires_at", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index("delegations_by_token", "delegations", ["tenant", "token_id"], if_not_exists=True)
    op.create_index("delegations_by_parent", "delegations", ["tenant", "parent_delegation_id"], if_not_exists=True)
    op.create_table(
        "revoked_policies",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "used_signatures",
        sa.Column("digest", sa.LargeBinary, primary_key=True),
        sa.Column("fresh_until", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_index("used_signatures_by_expiry", "used_signatures", ["fresh_until"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("used_signatures")
    op.drop_table("revoked_policies")
    op.drop_table("delegations")
