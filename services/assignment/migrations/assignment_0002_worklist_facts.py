"""assignment: what the worklist shows of a customer and of their signals

- assignment_customers.name, watch, months_below: the customer's name (core banking's record)
  and the watch and months below the tier's floor as tiering holds them after each fact, so
  the worklist shows and filters them without asking another service.
- assignment_signals.signal_type: the type of each signal, for the worklist's open signal types.

Data: customers already known have no name, are off watch with no months below, and signals
already kept have no type; each fills in with the customer's (or the signal's) next record.

Revision ID: assignment_0002
Revises: assignment_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "assignment_0002"
down_revision = "assignment_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignment_customers") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("watch", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("months_below", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("assignment_signals") as batch:
        batch.add_column(sa.Column("signal_type", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assignment_signals") as batch:
        batch.drop_column("signal_type")
    with op.batch_alter_table("assignment_customers") as batch:
        batch.drop_column("months_below")
        batch.drop_column("watch")
        batch.drop_column("name")
