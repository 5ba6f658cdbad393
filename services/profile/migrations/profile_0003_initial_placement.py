"""profile: a tier change's kind takes 32 characters (``initial_placement``)

Revision ID: profile_0003
Revises: profile_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "profile_0003"
down_revision = "profile_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_tier_changes") as batch:
        batch.alter_column("change", type_=sa.String(32), existing_type=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM profile_tier_changes WHERE LENGTH(change) > 16")
    with op.batch_alter_table("profile_tier_changes") as batch:
        batch.alter_column("change", type_=sa.String(16), existing_type=sa.String(32), existing_nullable=False)
