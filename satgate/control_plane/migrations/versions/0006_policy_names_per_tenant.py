"""Policy names are per tenant (SPEC v2.2): a policy's versions are unique per (tenant, name, version), and a
file policy's revocation is recorded per (tenant, name). An API policy's revocation is a version of its own
(`revoke`), so its name is free again for a new policy.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("policy_versions", recreate="always") as table:
        table.drop_constraint("policy_versions_once", type_="unique")
        table.create_unique_constraint("policy_versions_once", ["tenant", "name", "version"])
    op.create_table(
        "policy_revocations",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("revoked_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO policy_revocations (tenant, name, revoked_at, reason) "
        "SELECT tenant, name, revoked_at, reason FROM revoked_policies"
    )
    op.drop_table("revoked_policies")


def downgrade() -> None:
    op.create_table(
        "revoked_policies",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO revoked_policies (name, tenant, revoked_at, reason) "
        "SELECT name, min(tenant), min(revoked_at), min(reason) FROM policy_revocations GROUP BY name"
    )
    op.drop_table("policy_revocations")
    with op.batch_alter_table("policy_versions", recreate="always") as table:
        table.drop_constraint("policy_versions_once", type_="unique")
        table.create_unique_constraint("policy_versions_once", ["name", "version"])
