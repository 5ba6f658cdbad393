"""runtime: the customer access projection

Revision ID: runtime_0002
Revises: runtime_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "runtime_0002"
down_revision = "runtime_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runtime_customer_access",
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=True),
        sa.Column("primary_rm", sa.String(64), nullable=True),
        sa.Column("backup_rm", sa.String(64), nullable=True),
        sa.Column("primary_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("branch_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service", "customer_id", name="pk_runtime_customer_access"),
    )
    op.create_index("ix_runtime_customer_access_primary", "runtime_customer_access", ["service", "primary_rm"])
    op.create_index("ix_runtime_customer_access_branch", "runtime_customer_access", ["service", "branch_id"])


def downgrade() -> None:
    op.drop_table("runtime_customer_access")
