"""tiering: an account keeps its postings' position and its newest snapshot apart

A posting with a higher account_seq sets the balance of the account's postings whatever its
posted_at; a snapshot orders against the postings by time. One balance and one balance_at could
not hold both: a posting with a higher account_seq but an earlier posted_at than the last one
was taken for older than the balance in force and ignored. The account now keeps the highest
posting's balance and the latest posted_at reached, and the newest snapshot's balance and
as_of; the balance in force (``balance``) is derived from them when either changes.

Data: the balance in force becomes the postings' balance and its time their time (which of the
two kinds of fact it came from was not recorded); no snapshot is known until the next one.

Revision ID: tiering_0002
Revises: tiering_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "tiering_0002"
down_revision = "tiering_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tiering_accounts") as batch:
        batch.add_column(sa.Column("posting_balance", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("snapshot_balance", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tiering_accounts SET posting_balance = balance, posted_at = balance_at")
    with op.batch_alter_table("tiering_accounts") as batch:
        batch.drop_column("balance_at")


def downgrade() -> None:
    with op.batch_alter_table("tiering_accounts") as batch:
        batch.add_column(sa.Column("balance_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tiering_accounts SET balance_at = CASE WHEN snapshot_at IS NOT NULL AND "
               "(posted_at IS NULL OR snapshot_at >= posted_at) THEN snapshot_at ELSE posted_at END")
    with op.batch_alter_table("tiering_accounts") as batch:
        for column in ("posting_balance", "posted_at", "snapshot_balance", "snapshot_at"):
            batch.drop_column(column)
