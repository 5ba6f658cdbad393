"""alerts: customers, accounts, signals, suppression windows, large outflows, daily scans

Revision ID: alerts_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = None
branch_labels = ("alerts",)
depends_on = "runtime_0001"


def upgrade() -> None:
    op.create_table(
        "alerts_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("tier_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.Column("aum_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aum_highs", sa.Text, nullable=False),
        sa.Column("primary_rm", sa.String(64), nullable=True),
        sa.Column("primary_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("branch_id", sa.String(64), nullable=True),
        sa.Column("master_data_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("birth_md", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name="pk_alerts_customers"),
    )
    op.create_index("ix_alerts_customers_birth_md", "alerts_customers", ["birth_md"])
    op.create_index("ix_alerts_customers_primary_rm", "alerts_customers", ["primary_rm"])
    op.create_table(
        "alerts_accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("product_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("maturity_date", sa.Date, nullable=True),
        sa.Column("card_expiry", sa.Date, nullable=True),
        sa.PrimaryKeyConstraint("account_id", name="pk_alerts_accounts"),
    )
    op.create_index("ix_alerts_accounts_customer_id", "alerts_accounts", ["customer_id"])
    op.create_index("ix_alerts_accounts_maturity_date", "alerts_accounts", ["maturity_date"])
    op.create_index("ix_alerts_accounts_card_expiry", "alerts_accounts", ["card_expiry"])
    op.create_table(
        "alerts_signals",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("rm_id", sa.String(64), nullable=True),
        sa.Column("branch_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("occurs_on", sa.Date, nullable=True),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("trigger_event_id", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acted_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts_signals"),
    )
    op.create_index("ix_alerts_signals_rm_status", "alerts_signals", ["rm_id", "status", "raised_at"])
    op.create_index("ix_alerts_signals_branch_status", "alerts_signals", ["branch_id", "status", "raised_at"])
    op.create_index("ix_alerts_signals_customer_status", "alerts_signals", ["customer_id", "status"])
    op.create_index("ix_alerts_signals_type_subject", "alerts_signals", ["signal_type", "subject", "occurs_on"])
    op.create_index("ix_alerts_signals_status_type", "alerts_signals", ["status", "signal_type"])
    op.create_index("ix_alerts_signals_status_expires", "alerts_signals", ["status", "expires_on"])
    op.create_index("ix_alerts_signals_raised_at", "alerts_signals", ["raised_at"])
    op.create_table(
        "alerts_suppressions",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("raised_on", sa.Date, nullable=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("signal_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "signal_type", name="pk_alerts_suppressions"),
    )
    op.create_table(
        "alerts_outflows",
        sa.Column("posting_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("posting_id", name="pk_alerts_outflows"),
    )
    op.create_table(
        "alerts_daily_scans",
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("first_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("business_date", name="pk_alerts_daily_scans"),
    )


def downgrade() -> None:
    for table in ("alerts_daily_scans", "alerts_outflows", "alerts_suppressions", "alerts_signals",
                  "alerts_accounts", "alerts_customers"):
        op.drop_table(table)
