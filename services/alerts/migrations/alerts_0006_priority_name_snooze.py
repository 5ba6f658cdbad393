"""alerts: each signal's priority and customer name, and the date an RM snoozed it until

Data: stored signals take their type's priority as shipped (signals.priority.by_type, without
the tier's step) and no name; customers' names arrive with their next master-data record.

Revision ID: alerts_0006
Revises: alerts_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "alerts_0006"
down_revision = "alerts_0005"
branch_labels = None
depends_on = None

_BY_TYPE = {"vip_outflow": 1, "downgrade_watch": 2, "tier_downgraded": 2, "near_upgrade": 2, "maturity_due": 3,
            "tier_upgraded": 3, "card_expiry": 4, "birthday": 4}


def upgrade() -> None:
    with op.batch_alter_table("alerts_signals") as batch:
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="3"))
        batch.add_column(sa.Column("customer_name", sa.Text, nullable=True))
        batch.add_column(sa.Column("snoozed_until", sa.Date, nullable=True))
    with op.batch_alter_table("alerts_customers") as batch:
        batch.add_column(sa.Column("name", sa.Text, nullable=True))
    for signal_type, priority in _BY_TYPE.items():  # the defaults of the time (signals.priority.by_type)
        op.execute(sa.text("UPDATE alerts_signals SET priority = :p WHERE signal_type = :t")
                   .bindparams(p=priority, t=signal_type))


def downgrade() -> None:
    with op.batch_alter_table("alerts_customers") as batch:
        batch.drop_column("name")
    with op.batch_alter_table("alerts_signals") as batch:
        batch.drop_column("snoozed_until")
        batch.drop_column("customer_name")
        batch.drop_column("priority")
