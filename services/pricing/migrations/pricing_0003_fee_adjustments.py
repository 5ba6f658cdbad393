"""pricing: corrections of assessed fees after a late upgrade; the latest posting priced

- pricing_fee_adjustments: each correction of a fee already assessed (which is never
  rewritten), when tiering decides late an upgrade effective before postings priced at a lower
  tier in the same calendar month: the tier and net before and after, the difference, the
  points given back and the reason. adjustment_id (unique) derives from the posting and the
  decision, so a decision applied twice corrects once.
- pricing_customers.priced_through: the latest posted_at priced for the customer, so an upgrade
  effective after it (the usual case) reads no fees back. Filled from the fees priced so far.

Revision ID: pricing_0003
Revises: pricing_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "pricing_0003"
down_revision = "pricing_0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pricing_fee_adjustments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("adjustment_id", sa.String(64), nullable=False),
        sa.Column("posting_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("fee_id", sa.String(64), nullable=False),
        sa.Column("posted_at", UtcDateTime, nullable=False),
        sa.Column("tier_before", sa.String(32), nullable=False),
        sa.Column("tier_after", sa.String(32), nullable=False),
        sa.Column("waived", sa.BigInteger, nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("points_used", sa.BigInteger, nullable=False),
        sa.Column("points_value", sa.BigInteger, nullable=False),
        sa.Column("net_before", sa.BigInteger, nullable=False),
        sa.Column("net_after", sa.BigInteger, nullable=False),
        sa.Column("difference", sa.BigInteger, nullable=False),
        sa.Column("points_returned", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("breakdown", sa.Text, nullable=False),
        sa.Column("effective_at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pricing_fee_adjustments"),
        sa.UniqueConstraint("adjustment_id", name="uq_pricing_fee_adjustments_adjustment_id"),
    )
    op.create_index("ix_pricing_fee_adjustments_customer", "pricing_fee_adjustments", ["customer_id", "month"])
    with op.batch_alter_table("pricing_customers") as batch:
        batch.add_column(sa.Column("priced_through", UtcDateTime, nullable=True))
    op.execute("UPDATE pricing_customers SET priced_through = (SELECT MAX(f.posted_at) FROM pricing_fees f "
               "WHERE f.customer_id = pricing_customers.customer_id)")


def downgrade() -> None:
    with op.batch_alter_table("pricing_customers") as batch:
        batch.drop_column("priced_through")
    op.drop_index("ix_pricing_fee_adjustments_customer", table_name="pricing_fee_adjustments")
    op.drop_table("pricing_fee_adjustments")
