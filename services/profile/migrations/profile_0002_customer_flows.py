"""profile: AUM flows per customer and business day; a tier change keyed by its tiers too

Branch flows were counted into profile_branch_flows for the branches a customer had when the
day's first AUM change arrived (the profile_customers flow_* columns), so they depended on the
order in which bank.accounts and strata.aum happened to arrive. profile_customer_flows keeps
each customer's net AUM change per business day instead, and the branch report sums it over
the branch's members when it is asked.

Data: flows start empty. profile_branch_flows and the flow_* columns cannot be split back into
customers and days, so the branch reports' inflow and outflow count the AUM changes applied
from this revision on (the month to date fills up from the upgrade). A downgrade likewise
leaves the old tables empty.

The primary key of profile_tier_changes takes from_tier and to_tier, so two upgrades of one
customer at one instant (mass to gold, then gold to platinum) are two rows. A downgrade keeps,
of the rows that share the old key, the one with the lowest (from_tier, to_tier).

Revision ID: profile_0002
Revises: profile_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "profile_0002"
down_revision = "profile_0001"
branch_labels = None
depends_on = None

Money = sa.BigInteger
FLOW_COLUMNS = ("flow_day", "flow_net", "flow_home_branch", "flow_account_branches")
OLD_TIER_KEY = ["customer_id", "effective_at", "change"]
NEW_TIER_KEY = [*OLD_TIER_KEY, "from_tier", "to_tier"]


def upgrade() -> None:
    op.create_table(
        "profile_customer_flows",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("net", Money, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name="pk_profile_customer_flows"),
    )
    op.drop_table("profile_branch_flows")
    with op.batch_alter_table("profile_customers") as batch:
        for column in FLOW_COLUMNS:
            batch.drop_column(column)
    _tier_change_key(NEW_TIER_KEY)


def downgrade() -> None:
    op.execute(
        "DELETE FROM profile_tier_changes WHERE EXISTS (SELECT 1 FROM profile_tier_changes AS kept"
        " WHERE kept.customer_id = profile_tier_changes.customer_id"
        " AND kept.effective_at = profile_tier_changes.effective_at"
        " AND kept.change = profile_tier_changes.change"
        " AND (kept.from_tier < profile_tier_changes.from_tier OR (kept.from_tier = profile_tier_changes.from_tier"
        " AND kept.to_tier < profile_tier_changes.to_tier)))"
    )
    _tier_change_key(OLD_TIER_KEY)
    with op.batch_alter_table("profile_customers") as batch:
        batch.add_column(sa.Column("flow_day", sa.Date, nullable=True))
        batch.add_column(sa.Column("flow_net", Money, nullable=False, server_default="0"))
        batch.add_column(sa.Column("flow_home_branch", sa.String(64), nullable=True))
        batch.add_column(sa.Column("flow_account_branches", sa.Text, nullable=False, server_default="[]"))
    op.create_table(
        "profile_branch_flows",
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("view", sa.String(8), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("inflow", Money, nullable=False),
        sa.Column("outflow", Money, nullable=False),
        sa.PrimaryKeyConstraint("branch_id", "view", "day", name="pk_profile_branch_flows"),
    )
    op.drop_table("profile_customer_flows")


def _tier_change_key(columns: list[str]) -> None:
    with op.batch_alter_table("profile_tier_changes") as batch:
        batch.drop_constraint("pk_profile_tier_changes", type_="primary")
        batch.create_primary_key("pk_profile_tier_changes", columns)
