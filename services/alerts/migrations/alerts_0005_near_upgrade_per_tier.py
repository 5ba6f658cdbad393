"""alerts: near_upgrade's suppression window is per target tier (near gold, then near platinum,
is two signals); vip_outflow keeps one window per customer

Data: each stored near_upgrade window takes the target tier of the signal that opened it (its
evidence's ``next_tier``); vip_outflow windows get "".

Revision ID: alerts_0005
Revises: alerts_0004
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "alerts_0005"
down_revision = "alerts_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts_suppressions") as batch:
        batch.add_column(sa.Column("target_tier", sa.String(32), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT w.customer_id, s.evidence FROM alerts_suppressions w JOIN alerts_signals s ON s.id = w.signal_id"
        " WHERE w.signal_type = 'near_upgrade'")).all()
    for customer_id, evidence in rows:
        tier = json.loads(evidence).get("next_tier") or ""
        bind.execute(sa.text(
            "UPDATE alerts_suppressions SET target_tier = :tier"
            " WHERE customer_id = :customer_id AND signal_type = 'near_upgrade'"),
            {"tier": tier, "customer_id": customer_id})
    with op.batch_alter_table("alerts_suppressions", recreate="always") as batch:
        batch.drop_constraint("pk_alerts_suppressions", type_="primary")
        batch.create_primary_key("pk_alerts_suppressions", ["customer_id", "signal_type", "target_tier"])


def downgrade() -> None:
    # one window per type again: keep each customer's latest-ending near_upgrade window
    op.execute(
        "DELETE FROM alerts_suppressions WHERE signal_type = 'near_upgrade' AND EXISTS ("
        " SELECT 1 FROM alerts_suppressions o WHERE o.customer_id = alerts_suppressions.customer_id"
        " AND o.signal_type = 'near_upgrade' AND (o.until > alerts_suppressions.until OR (o.until ="
        " alerts_suppressions.until AND o.target_tier > alerts_suppressions.target_tier)))")
    with op.batch_alter_table("alerts_suppressions", recreate="always") as batch:
        batch.drop_constraint("pk_alerts_suppressions", type_="primary")
        batch.create_primary_key("pk_alerts_suppressions", ["customer_id", "signal_type"])
        batch.drop_column("target_tier")
