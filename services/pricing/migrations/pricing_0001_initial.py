"""pricing: customers, priced postings, monthly usage, points lots and ledger, redemptions,
expiry runs

Revision ID: pricing_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "pricing_0001"
down_revision = None
branch_labels = ("pricing",)
depends_on = "runtime_0001"

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pricing_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=True),
        sa.Column("tier_as_of", UtcDateTime, nullable=True),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.Column("average_aum_12m", sa.BigInteger, nullable=False),
        sa.Column("risk_level", sa.String(2), nullable=True),
        sa.Column("auto_points_offset", sa.Boolean, nullable=False),
        sa.Column("master_updated_at", UtcDateTime, nullable=True),
        sa.Column("points_balance", sa.BigInteger, nullable=False),
        sa.Column("points_oldest_year", sa.Integer, nullable=True),
        sa.Column("redeem_allowance", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_pricing_customers"),
    )
    op.create_table(
        "pricing_fees",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("posting_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("tx_type", sa.String(40), nullable=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("counterparty_bank", sa.String(64), nullable=True),
        sa.Column("cross_region", sa.Boolean, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("posted_at", UtcDateTime, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("fee_id", sa.String(64), nullable=True),
        sa.Column("use_number", sa.Integer, nullable=True),
        sa.Column("base", sa.BigInteger, nullable=False),
        sa.Column("waived", sa.BigInteger, nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("points_used", sa.BigInteger, nullable=False),
        sa.Column("points_value", sa.BigInteger, nullable=False),
        sa.Column("net", sa.BigInteger, nullable=False),
        sa.Column("points_earned", sa.BigInteger, nullable=False),
        sa.Column("points_balance", sa.BigInteger, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("breakdown", sa.Text, nullable=False),
        sa.Column("average_aum_12m", sa.BigInteger, nullable=False),
        sa.Column("fees_paid", sa.BigInteger, nullable=False),
        sa.Column("contribution_score", sa.BigInteger, nullable=False),
        sa.Column("priced_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pricing_fees"),
        sa.UniqueConstraint("posting_id", name="uq_pricing_fees_posting_id"),
    )
    op.create_index("ix_pricing_fees_customer", "pricing_fees", ["customer_id", "id"])
    op.create_index("ix_pricing_fees_posted_at", "pricing_fees", ["posted_at"])
    op.create_table(
        "pricing_usage",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("fee_id", sa.String(64), nullable=False),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.Column("free_uses", sa.Integer, nullable=False),
        sa.Column("charged", sa.BigInteger, nullable=False),
        sa.Column("paid", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "month", "fee_id", name="pk_pricing_usage"),
    )
    op.create_table(
        "pricing_points_lots",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("earned", sa.BigInteger, nullable=False),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.Column("expired", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "year", name="pk_pricing_points_lots"),
    )
    op.create_table(
        "pricing_points_ledger",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("lot_year", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("posting_id", sa.String(64), nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pricing_points_ledger"),
    )
    op.create_index("ix_pricing_points_ledger_customer", "pricing_points_ledger", ["customer_id", "id"])
    op.create_table(
        "pricing_redemptions",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_pricing_redemptions"),
    )
    op.create_index("ix_pricing_redemptions_customer_id", "pricing_redemptions", ["customer_id"])
    op.create_table(
        "pricing_expiry_runs",
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("first_run_at", UtcDateTime, nullable=False),
        sa.Column("last_run_at", UtcDateTime, nullable=False),
        sa.Column("customers", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("business_date", name="pk_pricing_expiry_runs"),
    )


def downgrade() -> None:
    for table in ("pricing_expiry_runs", "pricing_redemptions", "pricing_points_ledger",
                  "pricing_points_lots", "pricing_usage", "pricing_fees", "pricing_customers"):
        op.drop_table(table)
