"""profile: each account's balance now; an account a balance names before its record

strata.aum names the balance now of each account a change moved, and the customer 360 shows
it with the holding. strata.aum and bank.accounts are two topics read in no fixed order, so a
balance may name an account whose record has not arrived: its row then holds only the owner
and the balance (the record's columns NULL) until the record fills them in.

Data: balances start empty (NULL) and fill in as AUM changes arrive. A downgrade drops the
rows that hold no record yet, with every balance.

Revision ID: profile_0004
Revises: profile_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "profile_0004"
down_revision = "profile_0003"
branch_labels = None
depends_on = None

RECORD_COLUMNS = {
    "branch_id": sa.String(64), "product_type": sa.String(32), "product_code": sa.String(64),
    "status": sa.String(16), "opened_on": sa.Date(), "event_at": sa.DateTime(timezone=True),
}


def upgrade() -> None:
    with op.batch_alter_table("profile_accounts") as batch:
        batch.add_column(sa.Column("balance", sa.BigInteger, nullable=True))
        for name, kind in RECORD_COLUMNS.items():
            batch.alter_column(name, existing_type=kind, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM profile_accounts WHERE event_at IS NULL")
    with op.batch_alter_table("profile_accounts") as batch:
        for name, kind in RECORD_COLUMNS.items():
            batch.alter_column(name, existing_type=kind, nullable=False)
        batch.drop_column("balance")
