"""profile: customers, attributes, tags, accounts, signals, priced postings, tier changes, branch
flows, segment templates

Revision ID: profile_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "profile_0001"
down_revision = None
branch_labels = ("profile",)
depends_on = "runtime_0001"

Money = sa.BigInteger
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profile_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("id_number", sa.String(32), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("gender", sa.String(1), nullable=True),
        sa.Column("home_branch_id", sa.String(64), nullable=True),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("household_role", sa.String(16), nullable=True),
        sa.Column("risk_level", sa.String(2), nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("auto_points_offset", sa.Boolean, nullable=False),
        sa.Column("master_updated_at", When, nullable=True),
        sa.Column("aum", Money, nullable=False),
        sa.Column("mtd_average_daily_aum", Money, nullable=False),
        sa.Column("aum_by_product_type", sa.Text, nullable=False),
        sa.Column("liabilities", sa.Text, nullable=False),
        sa.Column("aum_business_date", sa.Date, nullable=True),
        sa.Column("aum_as_of", When, nullable=True),
        *[sa.Column(f"balance_{t}", Money, nullable=False) for t in (
            "demand_deposit", "time_deposit", "wealth_product", "fund", "insurance", "precious_metal",
            "loan", "credit_card")],
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("watch", sa.Boolean, nullable=False),
        sa.Column("tier_effective_at", When, nullable=True),
        sa.Column("primary_rm", sa.String(64), nullable=True),
        sa.Column("primary_at", When, nullable=True),
        sa.Column("backup_rm", sa.String(64), nullable=True),
        sa.Column("backup_at", When, nullable=True),
        sa.Column("open_signals", sa.Integer, nullable=False),
        sa.Column("points_balance", sa.BigInteger, nullable=True),
        sa.Column("points_at", When, nullable=True),
        sa.Column("fees_charged", Money, nullable=False),
        sa.Column("fees_priced", sa.Integer, nullable=False),
        sa.Column("last_contact_at", When, nullable=True),
        sa.Column("flow_day", sa.Date, nullable=True),
        sa.Column("flow_net", Money, nullable=False),
        sa.Column("flow_home_branch", sa.String(64), nullable=True),
        sa.Column("flow_account_branches", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_profile_customers"),
    )
    op.create_index("ix_profile_customers_home_branch_tier", "profile_customers", ["home_branch_id", "tier"])
    op.create_index("ix_profile_customers_household_id", "profile_customers", ["household_id"])
    op.create_index("ix_profile_customers_tier_aum", "profile_customers", ["tier", "aum"])
    op.create_index("ix_profile_customers_primary_rm", "profile_customers", ["primary_rm"])

    op.create_table(
        "profile_attributes",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "source", "name", name="pk_profile_attributes"),
    )
    op.create_table(
        "profile_tags",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "tag", name="pk_profile_tags"),
    )
    op.create_index("ix_profile_tags_tag", "profile_tags", ["tag"])

    op.create_table(
        "profile_accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("product_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("maturity_date", sa.Date, nullable=True),
        sa.Column("card_expiry", sa.Date, nullable=True),
        sa.Column("event_at", When, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_profile_accounts"),
    )
    op.create_index("ix_profile_accounts_customer_id", "profile_accounts", ["customer_id"])
    op.create_index("ix_profile_accounts_branch_id", "profile_accounts", ["branch_id", "status"])

    op.create_table(
        "profile_signals",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("signal_type", sa.String(64), nullable=False),
        sa.Column("rm_id", sa.String(64), nullable=True),
        sa.Column("branch_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", When, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_profile_signals"),
    )
    op.create_index("ix_profile_signals_customer_status", "profile_signals", ["customer_id", "status"])

    op.create_table(
        "profile_fee_postings",
        sa.Column("posting_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("fee_id", sa.String(64), nullable=True),
        sa.Column("net", Money, nullable=False),
        sa.Column("points_used", sa.BigInteger, nullable=False),
        sa.Column("posted_at", When, nullable=False),
        sa.PrimaryKeyConstraint("posting_id", name="pk_profile_fee_postings"),
    )
    op.create_index("ix_profile_fee_postings_customer_posted", "profile_fee_postings",
                    ["customer_id", "posted_at"])

    op.create_table(
        "profile_tier_changes",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("effective_at", When, nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("from_tier", sa.String(32), nullable=False),
        sa.Column("to_tier", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "effective_at", "change", name="pk_profile_tier_changes"),
    )
    op.create_index("ix_profile_tier_changes_effective_at", "profile_tier_changes", ["effective_at"])

    op.create_table(
        "profile_branch_flows",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("view", sa.String(8), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("inflow", Money, nullable=False),
        sa.Column("outflow", Money, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", "view", "day", name="pk_profile_branch_flows"),
    )
    op.create_table(
        "profile_segments",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("filter", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_profile_segments"),
    )


def downgrade() -> None:
    for table in ("profile_segments", "profile_branch_flows", "profile_tier_changes",
                  "profile_fee_postings", "profile_signals", "profile_accounts", "profile_tags",
                  "profile_attributes", "profile_customers"):
        op.drop_table(table)
