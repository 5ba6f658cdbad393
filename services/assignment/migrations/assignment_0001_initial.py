"""assignment: RM registry, books, customers, audit trail, signals, follow-ups

Revision ID: assignment_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "assignment_0001"
down_revision = None
branch_labels = ("assignment",)
depends_on = "runtime_0001"

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "assignment_rms",
        sa.Column("rm_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("capacity", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("rm_id", name="pk_assignment_rms"),
    )
    op.create_index("ix_assignment_rms_branch_id", "assignment_rms", ["branch_id"])
    op.create_table(
        "assignment_books",
        sa.Column("rm_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("rm_id", "role", "tier", name="pk_assignment_books"),
    )
    op.create_table(
        "assignment_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("tier_rank", sa.Integer, nullable=False),
        sa.Column("home_branch_id", sa.String(64), nullable=True),
        sa.Column("branch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("serving_branch", sa.String(64), nullable=True),
        sa.Column("standing", sa.String(16), nullable=False),
        sa.Column("primary_rm", sa.String(64), nullable=True),
        sa.Column("backup_rm", sa.String(64), nullable=True),
        sa.Column("primary_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aum", sa.BigInteger, nullable=False),
        sa.Column("aum_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contact", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_contact", sa.Date, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name="pk_assignment_customers"),
    )
    op.create_index("ix_assignment_customers_primary_rm", "assignment_customers", ["primary_rm"])
    op.create_index("ix_assignment_customers_backup_rm", "assignment_customers", ["backup_rm"])
    op.create_index("ix_assignment_customers_serving_standing", "assignment_customers",
                    ["serving_branch", "standing"])
    op.create_index("ix_assignment_customers_standing", "assignment_customers", ["standing"])
    op.create_table(
        "assignment_changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("from_rm", sa.String(64), nullable=True),
        sa.Column("to_rm", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("cause", sa.String(250), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("branch_id", sa.String(64), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_changes"),
    )
    op.create_index("ix_assignment_changes_customer_id", "assignment_changes", ["customer_id"])
    op.create_index("ix_assignment_changes_from_rm", "assignment_changes", ["from_rm"])
    op.create_index("ix_assignment_changes_to_rm", "assignment_changes", ["to_rm"])
    op.create_table(
        "assignment_signals",
        sa.Column("signal_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name="pk_assignment_signals"),
    )
    op.create_index("ix_assignment_signals_customer_status", "assignment_signals", ["customer_id", "status"])
    op.create_table(
        "assignment_follow_ups",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("rm_id", sa.String(64), nullable=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("next_date", sa.Date, nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_follow_ups"),
    )
    op.create_index("ix_assignment_follow_ups_customer_id", "assignment_follow_ups", ["customer_id"])


def downgrade() -> None:
    for table in ("assignment_follow_ups", "assignment_signals", "assignment_changes",
                  "assignment_customers", "assignment_books", "assignment_rms"):
        op.drop_table(table)
