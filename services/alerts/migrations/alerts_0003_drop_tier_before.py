"""alerts: no tier before the latest change; alerts reads tiering's changes as one ordered stream

Revision ID: alerts_0003
Revises: alerts_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "alerts_0003"
down_revision = "alerts_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts_customers") as batch:
        batch.drop_column("tier_before")


def downgrade() -> None:
    with op.batch_alter_table("alerts_customers") as batch:
        batch.add_column(sa.Column("tier_before", sa.String(32), nullable=True))
