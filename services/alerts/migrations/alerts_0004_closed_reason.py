"""alerts: why Strata closed a signal itself (a near-upgrade reached or fallen away, a watch
replaced, a signal nobody acknowledged in time, a reminder whose day passed)

Data: the signals Strata expired before this revision keep no reason (null).

Revision ID: alerts_0004
Revises: alerts_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "alerts_0004"
down_revision = "alerts_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts_signals") as batch:
        batch.add_column(sa.Column("closed_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts_signals") as batch:
        batch.drop_column("closed_reason")
