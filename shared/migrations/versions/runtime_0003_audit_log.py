"""runtime: the append-only audit log of reads that let customer data out

Revision ID: runtime_0003
Revises: runtime_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "runtime_0003"
down_revision = "runtime_0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# The API has no route that changes an entry; these triggers make the database refuse it too,
# whoever asks (a bug, a script, a hand at a SQL prompt).
POSTGRES_GUARD = [
    """CREATE FUNCTION runtime_audit_log_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'runtime_audit_log is append-only'; END;
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER runtime_audit_log_no_update BEFORE UPDATE OR DELETE ON runtime_audit_log
       FOR EACH ROW EXECUTE FUNCTION runtime_audit_log_append_only()""",
    """CREATE TRIGGER runtime_audit_log_no_truncate BEFORE TRUNCATE ON runtime_audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION runtime_audit_log_append_only()""",
]
SQLITE_GUARD = [
    """CREATE TRIGGER runtime_audit_log_no_update BEFORE UPDATE ON runtime_audit_log
       BEGIN SELECT RAISE(ABORT, 'runtime_audit_log is append-only'); END""",
    """CREATE TRIGGER runtime_audit_log_no_delete BEFORE DELETE ON runtime_audit_log
       BEGIN SELECT RAISE(ABORT, 'runtime_audit_log is append-only'); END""",
]


def upgrade() -> None:
    op.create_table(
        "runtime_audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("endpoint", sa.String(300), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("unmasked", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_audit_log"),
    )
    op.create_index("ix_runtime_audit_log_customer", "runtime_audit_log", ["customer_id"])
    op.create_index("ix_runtime_audit_log_subject", "runtime_audit_log", ["subject"])
    guard = POSTGRES_GUARD if op.get_bind().dialect.name == "postgresql" else SQLITE_GUARD
    for statement in guard:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("runtime_audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION runtime_audit_log_append_only()")
