"""Windowed budgets in the registry: the `budget_window` a token or delegation carries and its bucket.

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
    for table_name in ("tokens", "delegations"):
        with op.batch_alter_table(table_name) as table:
            table.add_column(sa.Column("budget_window", sa.Text))
            table.add_column(sa.Column("window_bucket_id", sa.Text))


def downgrade() -> None:
    for table_name in ("tokens", "delegations"):
        with op.batch_alter_table(table_name) as table:
            table.drop_column("window_bucket_id")
            table.drop_column("budget_window")
