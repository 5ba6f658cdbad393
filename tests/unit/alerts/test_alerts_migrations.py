"""Alerts' data migrations carry what is stored over to the new shape."""

from __future__ import annotations

import tempfile

from alembic import command
from sqlalchemy import text

from shared import migrate
from shared.db import Database


async def _upgrade(db: Database, *targets: str) -> None:
    cfg = migrate.alembic_config(["alerts"])

    def run(connection) -> None:
        cfg.attributes["connection"] = connection
        for target in targets:
            command.upgrade(cfg, target)

    async with db.engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


SIGNAL = ("INSERT INTO alerts_signals (id, signal_type, customer_id, status, raised_at, evidence, subject, "
          "threshold, version, created_at, status_at) VALUES (:id, :type, 'MIG-C1', 'open', '2026-11-02 02:00:00', "
          ":evidence, 'MIG-C1', 0, 1, '2026-11-02 02:00:00', '2026-11-02 02:00:00')")
WINDOW = ("INSERT INTO alerts_suppressions (customer_id, signal_type, raised_on, until, signal_id) "
          "VALUES ('MIG-C1', :type, '2026-11-02', :until, :id)")


async def test_a_near_upgrade_window_keeps_the_target_tier_of_the_signal_that_opened_it():
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/m.db")
        try:
            await _upgrade(db, "runtime@head", "alerts_0004")
            async with db.transaction() as session:
                for sid, kind, evidence, until in (("S-NEAR", "near_upgrade", '{"next_tier": "gold"}', "2026-12-02"),
                                                   ("S-VIP", "vip_outflow", '{"trigger": "aum_drop"}', "2026-11-09")):
                    await session.execute(text(SIGNAL), {"id": sid, "type": kind, "evidence": evidence})
                    await session.execute(text(WINDOW), {"type": kind, "until": until, "id": sid})
            await _upgrade(db, "alerts@head")
            async with db.transaction() as session:
                rows = (await session.execute(text(
                    "SELECT signal_type, target_tier, until FROM alerts_suppressions ORDER BY signal_type"))).all()
                assert [tuple(r) for r in rows] == [("near_upgrade", "gold", "2026-12-02"), ("vip_outflow", "", "2026-11-09")]
                await session.execute(text(
                    "INSERT INTO alerts_suppressions (customer_id, signal_type, target_tier, raised_on, until, signal_id)"
                    " VALUES ('MIG-C1', 'near_upgrade', 'platinum', '2026-11-05', '2026-12-05', 'S-NEAR-2')"))
        finally:
            await db.dispose()


async def test_signals_stored_before_priorities_take_their_types_priority_and_wake():
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/m.db")
        try:
            await _upgrade(db, "runtime@head", "alerts_0005")
            async with db.transaction() as session:
                for sid, kind in (("S-VIP", "vip_outflow"), ("S-BDAY", "birthday")):
                    await session.execute(text(SIGNAL), {"id": sid, "type": kind, "evidence": "{}"})
            await _upgrade(db, "alerts@head")
            async with db.transaction() as session:
                rows = (await session.execute(text(
                    "SELECT id, priority, customer_name, snoozed_until FROM alerts_signals ORDER BY id"))).all()
                assert [tuple(r) for r in rows] == [("S-BDAY", 4, None, None), ("S-VIP", 1, None, None)]
        finally:
            await db.dispose()
