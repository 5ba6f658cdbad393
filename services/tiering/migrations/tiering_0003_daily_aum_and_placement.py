"""tiering: end-of-day AUM per customer and day, first placements, postings seen per account

- tiering_daily_aum: each customer's AUM at the end of each business day with activity and the
  day's highest, kept as facts arrive: the AUM-over-time of the customer page, and the history a
  tier-policy simulation replays.
- tiering_customers.placed_at: the time of the customer's first AUM (their first placement);
  day_high: the highest AUM of the current business day; master_at: the time of the latest
  customer record applied; recent_averages: the last twelve closed months' averages, which
  average_aum_12m is worked out from at each close. mtd_month and mtd_dom are dropped: they
  repeated mtd_day.
- tiering_tier_history.change takes 32 characters (``initial_placement``).
- tiering_accounts.seen: the account_seq values applied (as ranges), so a posting sent again
  under another ce_id is known and passed on to no one a second time.

Data: customers already known count as placed (at their last update); an account's seen
postings are 1 to its highest seq; no daily rows before this revision; each customer's recent
averages are filled from the closed months kept in tiering_monthly_aum.

Revision ID: tiering_0003
Revises: tiering_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "tiering_0003"
down_revision = "tiering_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tiering_daily_aum",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.Column("high", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name="pk_tiering_daily_aum"),
    )
    op.create_index("ix_tiering_daily_aum_day", "tiering_daily_aum", ["day"])
    with op.batch_alter_table("tiering_customers") as batch:
        batch.add_column(sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("day_high", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("master_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("recent_averages", sa.Text, nullable=False, server_default=""))
    op.execute("UPDATE tiering_customers SET day_high = aum, "
               "placed_at = COALESCE(updated_at, tier_since, CURRENT_TIMESTAMP)")
    with op.batch_alter_table("tiering_customers") as batch:
        batch.drop_column("mtd_month")
        batch.drop_column("mtd_dom")
    _recent_averages()
    with op.batch_alter_table("tiering_tier_history") as batch:
        batch.alter_column("change", type_=sa.String(32), existing_type=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("tiering_accounts") as batch:
        batch.add_column(sa.Column("seen", sa.Text, nullable=False, server_default=""))
    op.execute("UPDATE tiering_accounts SET seen = '1-' || CAST(seq AS VARCHAR) WHERE seq > 1")
    op.execute("UPDATE tiering_accounts SET seen = '1' WHERE seq = 1")


def _recent_averages() -> None:
    """Each customer's averages of the last twelve closed months, as ``2026-10:123.45,...``."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT customer_id, month, average FROM tiering_monthly_aum WHERE average IS NOT NULL "
        "ORDER BY customer_id, month")).all()
    recent: dict[str, dict[str, str]] = {}
    for customer_id, month, cents in rows:
        kept = recent.setdefault(customer_id, {})
        kept[month] = f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else f"-{(-cents) // 100}.{(-cents) % 100:02d}"
        if len(kept) > 12:
            del kept[min(kept)]
    update = sa.text("UPDATE tiering_customers SET recent_averages = :r WHERE customer_id = :c")
    for customer_id, kept in recent.items():
        conn.execute(update, {"r": ",".join(f"{m}:{v}" for m, v in sorted(kept.items())), "c": customer_id})


def downgrade() -> None:
    with op.batch_alter_table("tiering_accounts") as batch:
        batch.drop_column("seen")
    with op.batch_alter_table("tiering_customers") as batch:
        batch.add_column(sa.Column("mtd_month", sa.String(7), nullable=False, server_default="2000-01"))
        batch.add_column(sa.Column("mtd_dom", sa.Integer, nullable=False, server_default="1"))
    op.execute("UPDATE tiering_customers SET mtd_month = SUBSTR(CAST(mtd_day AS VARCHAR), 1, 7), "
               "mtd_dom = CAST(SUBSTR(CAST(mtd_day AS VARCHAR), 9, 2) AS INTEGER)")
    with op.batch_alter_table("tiering_customers") as batch:
        batch.drop_column("placed_at")
        batch.drop_column("day_high")
        batch.drop_column("master_at")
        batch.drop_column("recent_averages")
    op.drop_index("ix_tiering_daily_aum_day", table_name="tiering_daily_aum")
    op.drop_table("tiering_daily_aum")
