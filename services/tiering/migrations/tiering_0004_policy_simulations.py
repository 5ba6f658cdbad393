"""tiering: tier-policy simulations, and where each month-end close stood in the history

- tiering_simulations: a simulation of a candidate tier policy over past months (what was
  asked, its progress, its answer as JSON); tiering_simulation_customers: each customer's tier,
  watch and months below at the end of the simulated period under today's policy and the
  candidate. Nothing else is written by a simulation.
- tiering_month_closes.history_through: the latest business day tiering had applied facts of
  when the close ran, so a simulation closes the month at the same point of the history.

Data: closes before this revision have no history_through (a simulation closes those months at
their last day, before the next month's facts).

Revision ID: tiering_0004
Revises: tiering_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "tiering_0004"
down_revision = "tiering_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tiering_simulations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customers_total", sa.BigInteger, nullable=False),
        sa.Column("customers_done", sa.BigInteger, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tiering_simulations"),
    )
    op.create_table(
        "tiering_simulation_customers",
        sa.Column("simulation_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("today_tier", sa.String(32), nullable=False),
        sa.Column("today_watch", sa.Boolean, nullable=False),
        sa.Column("today_months_below", sa.Integer, nullable=False),
        sa.Column("candidate_tier", sa.String(32), nullable=False),
        sa.Column("candidate_watch", sa.Boolean, nullable=False),
        sa.Column("candidate_months_below", sa.Integer, nullable=False),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("simulation_id", "customer_id", name="pk_tiering_simulation_customers"),
    )
    with op.batch_alter_table("tiering_month_closes") as batch:
        batch.add_column(sa.Column("history_through", sa.Date, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tiering_month_closes") as batch:
        batch.drop_column("history_through")
    op.drop_table("tiering_simulation_customers")
    op.drop_table("tiering_simulations")
