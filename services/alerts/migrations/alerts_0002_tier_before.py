"""alerts: the tier before the latest tier change, to judge events of that instant or older

Revision ID: alerts_0002
Revises: alerts_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts_customers", sa.Column("tier_before", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("alerts_customers", "tier_before")
