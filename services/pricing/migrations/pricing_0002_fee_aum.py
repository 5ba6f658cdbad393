"""pricing: the customer's AUM right after each priced posting

- pricing_fees.aum: the AUM tiering passed on with the posting (right after it), so a
  tier-policy simulation can work out the tier at each posting again from the postings alone.
  Postings priced before this revision keep NULL: their AUM was not recorded.

Revision ID: pricing_0002
Revises: pricing_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "pricing_0002"
down_revision = "pricing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pricing_fees") as batch:
        batch.add_column(sa.Column("aum", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pricing_fees") as batch:
        batch.drop_column("aum")
