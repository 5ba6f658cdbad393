"""The live one-screen summary of ``strata run``: business date, events per second, customers by
tier, tier changes, signals, fees charged and waived.

It reads what exists: tiers from tiering's table, everything else from the process's Prometheus
metrics. A service that is not there shows "–". On a terminal the screen is redrawn in place
(cursor home, each line cleared to its end: no flicker); otherwise, or with ``--quiet``, one
compact line is printed every few seconds.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, TextIO

from prometheus_client import REGISTRY
from sqlalchemy import text

DASH = "–"
TTY_INTERVAL = 1.0
LINE_INTERVAL = 2.0


@dataclass
class FeedStatus:
    """What the simulator tells the screen about itself."""

    customers: int = 0
    seed: int = 0
    speed: float = 0.0
    phase: str = "starting"
    business_day: str = DASH
    live_from: str = DASH
    published: int = 0
    scheduler: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    tiers: dict[str, int] | None
    watch: int | None
    changes: dict[str, float]
    handled: float
    signals: tuple[float, dict[str, float]] | None
    fees: dict[str, float | None] | None


def read_metrics(registry=REGISTRY) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every counter sample of the process, by sample name."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _sum(rows) -> float:
    return sum(value for _, value in rows)


def signals_raised(metrics) -> tuple[float, dict[str, float]] | None:
    """Signals raised, and by type, from whichever counter the alerts service keeps."""
    names = [n for n in metrics if n.startswith("strata_signal") or n.startswith("strata_alerts_signal")]
    if not names:
        return None
    raised = [n for n in names if "raised" in n or "emitted" in n or "created" in n]
    plain = [n for n in names if not re.search(r"suppress|expire|ack|dedup|skip|rout|fail|done", n)]
    name = (raised or plain or [None])[0]
    if name is None:
        return None
    by_type: dict[str, float] = {}
    for labels, value in metrics[name]:
        key = labels.get("signal_type") or labels.get("type") or labels.get("signal") or ""
        if key:
            by_type[key] = by_type.get(key, 0) + value
    return _sum(metrics[name]), by_type


def fees_summary(metrics) -> dict[str, float | None] | None:
    """Fees charged and waived, counts and amounts, from the pricing service's counters (by name
    or by an outcome label)."""
    names = [n for n in metrics if n.startswith("strata_") and "fee" in n]
    if not names:
        return None
    out: dict[str, float | None] = {"charged": None, "waived": None, "charged_cny": None, "waived_cny": None}
    for name in names:
        money = bool(re.search(r"cny|amount|yuan", name))
        for labels, value in metrics[name]:
            outcome = next((o for o in ("waived", "charged")
                            if o in name or any(o in str(v) for v in labels.values())), None)
            if outcome is None:
                continue
            key = f"{outcome}_cny" if money else outcome
            out[key] = (out[key] or 0) + value
    return out if any(v is not None for v in out.values()) else None


async def read_tiers(runtime) -> tuple[dict[str, int] | None, int | None]:
    try:
        async with runtime.db.sessions() as session:
            rows = (await session.execute(text(
                "SELECT tier, COUNT(*), SUM(CASE WHEN watch THEN 1 ELSE 0 END) FROM tiering_customers GROUP BY tier"
            ))).all()
    except Exception:  # tiering not there (yet): the screen shows a dash
        return None, None
    return {tier: count for tier, count, _ in rows}, sum(int(w or 0) for _, _, w in rows)


def _n(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _cny(value: float | None) -> str:
    return DASH if value is None else f"¥{Decimal(str(value)):,.2f}"


class Screen:
    def __init__(self, runtime, status: FeedStatus, *, base_url: str, tty: bool,
                 out: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.status = status
        self.base_url = base_url
        self.tty = tty
        self.out = out or sys.stdout
        self.clock = clock
        self._last: tuple[float, int, float] | None = None
        self.rates = (0.0, 0.0)

    async def snapshot(self) -> Snapshot:
        tiers, watch = await read_tiers(self.runtime)
        metrics = read_metrics()
        changes: dict[str, float] = {}
        for labels, value in metrics.get("strata_tier_changes_total", []):
            changes[labels.get("change", "")] = changes.get(labels.get("change", ""), 0) + value
        handled = _sum(metrics.get("strata_events_consumed_total", []))
        return Snapshot(tiers, watch, changes, handled, signals_raised(metrics), fees_summary(metrics))

    def _update_rates(self, snap: Snapshot) -> None:
        now = self.clock()
        if self._last is not None:
            elapsed = max(1e-6, now - self._last[0])
            self.rates = ((self.status.published - self._last[1]) / elapsed, (snap.handled - self._last[2]) / elapsed)
        self._last = (now, self.status.published, snap.handled)

    def tier_line(self, snap: Snapshot) -> str:
        if snap.tiers is None:
            return DASH
        order = [t.id for t in self.runtime.settings.tiers]
        parts = [f"{t} {snap.tiers.get(t, 0):,}" for t in order]
        return "   ".join(parts) + (f"   (on watch {snap.watch:,})" if snap.watch else "")

    def lines(self, snap: Snapshot) -> list[str]:
        s = self.status
        if s.phase == "history":
            when = f"{s.business_day}   replaying history up to {s.live_from} at full speed"
        elif s.phase == "live":
            when = f"{s.business_day}   live, {s.speed:,.0f} business seconds a second"
        else:
            when = f"{s.business_day}   {s.phase}"
        changes = snap.changes
        if snap.signals is None:
            signals = DASH
        else:
            total, by_type = snap.signals
            top = sorted(by_type.items(), key=lambda kv: -kv[1])[:5]
            signals = _n(total) + (f"   ({', '.join(f'{k} {v:,.0f}' for k, v in top)})" if top else "")
        fees = snap.fees
        if fees is None:
            fee_line = DASH
        else:
            fee_line = (f"charged {_n(fees['charged'])} ({_cny(fees['charged_cny'])})   "
                        f"waived {_n(fees['waived'])} ({_cny(fees['waived_cny'])})")
        out = [
            f"Strata · simulated bank of {s.customers:,} customers (seed {s.seed})",
            f"  API docs {self.base_url}/docs   metrics {self.base_url}/metrics   token: strata token --role admin",
            "",
            f"  business date    {when}",
            f"  events/s         {self.rates[0]:,.0f} published   {self.rates[1]:,.0f} handled by the services"
            f"   ({s.published:,} published)",
            f"  customers        {self.tier_line(snap)}",
            f"  tier changes     upgrades {_n(changes.get('upgrade', 0))}   downgrades {_n(changes.get('downgrade', 0))}"
            f"   watch {_n(changes.get('watch', 0))}" if changes else f"  tier changes     {DASH}",
            f"  signals raised   {signals}   (since this process started)",
            f"  fees             {fee_line}   (since this process started)",
        ]
        for key, label in (("month_end", "month-end close"), ("daily_scan", "daily scan"), ("rms", "RMs")):
            if key in s.scheduler:
                out.append(f"  {label:<16} {s.scheduler[key]}")
        out += [f"  {note}" for note in s.notes[-3:]]
        out += ["", "Ctrl-C stops it; `strata run` again continues from the same data."]
        return out

    def compact(self, snap: Snapshot) -> str:
        s = self.status
        tiers = DASH if snap.tiers is None else " ".join(f"{t}={n}" for t, n in snap.tiers.items())
        signals = DASH if snap.signals is None else _n(snap.signals[0])
        fees = DASH if snap.fees is None else f"{_n(snap.fees['charged'])}/{_n(snap.fees['waived'])}"
        return (f"[simulator] {s.business_day} {s.phase} | {self.rates[0]:,.0f} ev/s published, "
                f"{self.rates[1]:,.0f} handled | tiers {tiers} | signals {signals} | fees charged/waived {fees}")

    async def draw(self) -> None:
        snap = await self.snapshot()
        self._update_rates(snap)
        if self.tty:
            body = "".join(f"{line}\x1b[K\n" for line in self.lines(snap))
            self.out.write("\x1b[H" + body + "\x1b[J")
        else:
            self.out.write(self.compact(snap) + "\n")
        self.out.flush()

    async def run(self) -> None:
        interval = TTY_INTERVAL if self.tty else LINE_INTERVAL
        if self.tty:
            self.out.write("\x1b[2J\x1b[H\x1b[?25l")  # clear once, hide the cursor
        try:
            while True:
                try:
                    await self.draw()
                except Exception as exc:  # the screen must never take the process down
                    self.status.notes.append(f"summary: {exc}"[:120])
                await asyncio.sleep(interval)
        finally:
            if self.tty:
                self.out.write("\x1b[?25h\n")
                self.out.flush()
