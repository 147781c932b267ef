"""Usage records and the audit chain in the control plane: shared by every authz host and Mint replica.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite: an INTEGER PRIMARY KEY is the rowid


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("tenant", sa.Text),
        sa.Column("token_id", sa.Text),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
    )
    op.create_index("usage_by_time", "usage", ["time"])
    op.create_table(
        "audit",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_once",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_once")
    op.drop_table("audit")
    op.drop_index("usage_by_time", "usage")
    op.drop_table("usage")
