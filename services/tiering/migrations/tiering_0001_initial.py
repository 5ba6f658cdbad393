"""tiering: accounts, customers, households, monthly AUM, tier history, month closes

Revision ID: tiering_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "tiering_0001"
down_revision = None
branch_labels = ("tiering",)
depends_on = "runtime_0001"

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "tiering_accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("balance_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name="pk_tiering_accounts"),
    )
    op.create_index("ix_tiering_accounts_customer_id", "tiering_accounts", ["customer_id"])
    op.create_table(
        "tiering_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.Column("liabilities", sa.BigInteger, nullable=False),
        sa.Column("holdings", sa.JSON, nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("watch", sa.Boolean, nullable=False),
        sa.Column("months_below", sa.Integer, nullable=False),
        sa.Column("tier_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mtd_day", sa.Date, nullable=False),
        sa.Column("mtd_month", sa.String(7), nullable=False),
        sa.Column("mtd_dom", sa.Integer, nullable=False),
        sa.Column("mtd_sum", sa.BigInteger, nullable=False),
        sa.Column("average_aum_12m", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name="pk_tiering_customers"),
    )
    op.create_index("ix_tiering_customers_household_id", "tiering_customers", ["household_id"])
    op.create_index("ix_tiering_customers_tier", "tiering_customers", ["tier"])
    op.create_table(
        "tiering_households",
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("household_id", name="pk_tiering_households"),
    )
    op.create_table(
        "tiering_monthly_aum",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("average", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "month", name="pk_tiering_monthly_aum"),
    )
    op.create_index("ix_tiering_monthly_aum_month", "tiering_monthly_aum", ["month"])
    op.create_table(
        "tiering_tier_history",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("from_tier", sa.String(32), nullable=False),
        sa.Column("to_tier", sa.String(32), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("watch", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("basis", sa.BigInteger, nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tiering_tier_history"),
    )
    op.create_index("ix_tiering_tier_history_customer_id", "tiering_tier_history", ["customer_id"])
    op.create_table(
        "tiering_month_closes",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("month", name="pk_tiering_month_closes"),
    )


def downgrade() -> None:
    for table in ("tiering_month_closes", "tiering_tier_history", "tiering_monthly_aum",
                  "tiering_households", "tiering_customers", "tiering_accounts"):
        op.drop_table(table)
