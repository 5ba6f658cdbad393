"""runtime: processed events and the outbox

Revision ID: runtime_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "runtime_0001"
down_revision = None
branch_labels = ("runtime",)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "runtime_processed_events",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_runtime_processed_events"),
    )
    op.create_index("ix_runtime_processed_events_age", "runtime_processed_events", ["consumer", "processed_at"])
    op.create_table(
        "runtime_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_outbox"),
    )
    op.create_index("ix_runtime_outbox_service_id", "runtime_outbox", ["service", "id"])


def downgrade() -> None:
    op.drop_index("ix_runtime_outbox_service_id", "runtime_outbox")
    op.drop_table("runtime_outbox")
    op.drop_table("runtime_processed_events")
