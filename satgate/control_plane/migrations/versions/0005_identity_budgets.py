"""Identity budgets in the registry: what a token's budget belongs to (`budget_per`), the rule that set it, and
the period of its credits bucket — a token whose buckets' limits the ledger holds (SPEC v2.2).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as table:
        table.add_column(sa.Column("budget_per", sa.Text))
        table.add_column(sa.Column("budget_rule", sa.Text))
        table.add_column(sa.Column("budget_period", sa.Text))
    op.create_index("tokens_by_policy_budget", "tokens", ["tenant", "policy", "budget_per"])


def downgrade() -> None:
    op.drop_index("tokens_by_policy_budget", "tokens")
    with op.batch_alter_table("tokens") as table:
        table.drop_column("budget_period")
        table.drop_column("budget_rule")
        table.drop_column("budget_per")
