"""Profile end to end on the real Kafka broker and PostgreSQL.

Master data and Strata events for a few thousand customers go through Kafka; the customer 360
and the branch reports must equal figures this test computes on its own from the same input.
A 100,000-member segment streams as CSV through the real HTTP route with bounded memory.
Sizes are module constants read from the environment, so a soak run is one variable away.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    CustomerV1,
    FeeAssessedV1,
    SignalV1,
    TierChangedV1,
)
from shared.runtime.models import ProcessedEvent
from services.profile.models import BALANCE_COLUMNS
from tests.integration.conftest import distributed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

CUSTOMERS = int(os.environ.get("STRATA_IT_PROFILE_CUSTOMERS", "2000"))
SAMPLED_360 = int(os.environ.get("STRATA_IT_PROFILE_SAMPLED_360", "150"))
SEGMENT_MEMBERS = int(os.environ.get("STRATA_IT_PROFILE_SEGMENT_MEMBERS", "100000"))
EXPORT_PEAK_BYTES = int(os.environ.get("STRATA_IT_PROFILE_EXPORT_PEAK_BYTES", str(48 * 1024 * 1024)))
"""Generous: the same export held in memory whole grows the process by well over 150 MB."""
BRANCHES = [f"BR-{i:02d}" for i in range(8)]
TIERS = ["mass", "gold", "platinum", "diamond", "private"]
ZONE = ZoneInfo("Asia/Shanghai")
ZERO = Decimal("0.00")


# --- the input, and the figures computed from it without profile's code ---------------------


@dataclass
class Customer:
    id: str
    record: CustomerV1
    accounts: list[AccountV1] = field(default_factory=list)
    aum: list[AumV1] = field(default_factory=list)          # in as_of order, as tiering emits them
    tiers: list[TierChangedV1] = field(default_factory=list)
    signals: dict[str, str] = field(default_factory=dict)    # id -> final status
    fees: dict[str, Decimal] = field(default_factory=dict)   # posting id -> net
    points: int | None = None
    primary: str | None = None


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def generate(n: int, today: date, seed: int = 20261128) -> tuple[list[Customer], dict[str, list]]:
    """Customers and the events about them, grouped in the phases they are published in:
    master data first, then Strata's events, then late copies that must change nothing."""
    rng = random.Random(seed)
    first = today.replace(day=1)
    last_month = first - timedelta(days=1)
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    phases: dict[str, list] = {"master": [], "strata": [], "late": []}
    customers = []
    for i in range(n):
        cid = f"IC{i:06d}"
        home = rng.choice(BRANCHES)
        household = f"IH{i // 3:05d}" if i % 5 < 3 else None
        updated = at(last_month, 9) + timedelta(minutes=i)
        record = CustomerV1(
            customer_id=cid, name=f"客户{i}", id_number=f"36010219{rng.randint(50, 99)}0715{i % 10000:04d}",
            phone=f"138{i:08d}", birth_date=date(rng.randint(1940, 2004), rng.randint(1, 12), rng.randint(1, 28)),
            gender=rng.choice("FMU"), home_branch_id=home, household_id=household,
            household_role=("head" if i % 3 == 0 else "spouse") if household else None,
            risk_level=rng.choice(["C1", "C2", "C3", "C4", "C5"]), tags=rng.sample(["travel", "golf", "car", "tea"], 2),
            source="core", updated_at=updated,
        )
        c = Customer(cid, record)
        phases["master"].append(record)
        if i % 7 == 0:  # an older record arriving late must not win
            phases["late"].append(record.model_copy(update={"name": "stale", "home_branch_id": "BR-STALE",
                                                            "updated_at": updated - timedelta(days=3)}))
        if i % 11 == 0:
            phases["master"].append(CustomerV1(customer_id=cid, source="tax", attributes={"bracket": i % 4},
                                               updated_at=updated))
        for k in range(rng.randint(1, 3)):
            product = rng.choice(["demand_deposit", "time_deposit", "wealth_product", "fund", "loan", "credit_card"])
            acct = AccountV1(
                account_id=f"{cid}-{k}", customer_id=cid,
                branch_id=home if rng.random() < 0.7 else rng.choice(BRANCHES), product_type=product,
                product_code=f"P-{product}", status="closed" if rng.random() < 0.1 else "open",
                opened_on=date(2024, 1, 1),
                maturity_date=today + timedelta(days=rng.randint(0, 400)) if product in ("time_deposit",
                                                                                        "wealth_product") else None,
                card_expiry=today + timedelta(days=rng.randint(0, 900)) if product in ("demand_deposit",
                                                                                      "credit_card") else None,
            )
            c.accounts.append(acct)
            phases["master"].append(acct)
        # AUM: one value last month for some, then one to four changes this month, in order
        moments = sorted(rng.sample([(d, h) for d in days for h in (9, 11, 14, 16)], rng.randint(1, 4)))
        if i % 4 == 0:
            moments.insert(0, (last_month, 15))
        for d, h in moments:
            amount = Decimal(rng.randint(0, 800_000_00)) / 100
            demand = (amount * Decimal("0.4")).quantize(Decimal("0.01"))
            event = AumV1(customer_id=cid, aum=amount, mtd_average_daily_aum=amount,
                          by_product_type={"demand_deposit": demand, "time_deposit": amount - demand},
                          liabilities={"loan": Decimal("-1000.00")} if i % 9 == 0 else {},
                          business_date=d, as_of=at(d, h, i % 60))
            c.aum.append(event)
            phases["strata"].append(event)
        if c.aum and i % 6 == 0:  # an older AUM arriving late must not win
            old = c.aum[0]
            phases["late"].append(old.model_copy(update={"aum": Decimal("1.00"),
                                                         "as_of": old.as_of - timedelta(hours=1)}))
        # tiers: an upgrade this month for some, a downgrade for others, last month for a few
        level = rng.randint(0, 4)
        if level:
            when = at(rng.choice(days), 10, i % 60) if i % 8 else at(last_month, 10)
            c.tiers.append(TierChangedV1(customer_id=cid, **{"from": "mass"}, to=TIERS[level], reason="it",
                                         effective_at=when, change="upgrade", watch=False, aum="0.00", basis="0.00"))
            if i % 10 == 3 and level > 1:
                later = when + timedelta(minutes=30)
                c.tiers.append(TierChangedV1(customer_id=cid, **{"from": TIERS[level]}, to=TIERS[level - 1],
                                             reason="it", effective_at=later, change="downgrade", watch=False,
                                             aum="0.00", basis="0.00"))
            phases["strata"].extend(c.tiers)
            phases["late"].append(c.tiers[0].model_copy(update={"to": "private", "effective_at":
                                                                c.tiers[0].effective_at - timedelta(days=40)}))
            c.primary = f"RM-{level}-{i % 13}"
            phases["strata"].append(AssignmentChangedV1(customer_id=cid, role="primary", **{"from": None},
                                                        to=c.primary, reason="it", changed_at=when))
        for k in range(i % 3):
            sid = f"{cid}-S{k}"
            phases["strata"].append(SignalV1(id=sid, signal_type="near_upgrade", customer_id=cid, rm_id=c.primary,
                                             branch_id=home, status="open", raised_at=at(today, 8),
                                             evidence={"k": k}))
            c.signals[sid] = "open"
            if k == 1:
                phases["late"].append(SignalV1(id=sid, signal_type="near_upgrade", customer_id=cid,
                                               rm_id=c.primary, branch_id=home, status="done",
                                               raised_at=at(today, 8), evidence={}))
                c.signals[sid] = "done"
        for k in range(i % 4):
            pid = f"{cid}-P{k}"
            net = Decimal(rng.randint(0, 500)) / 100
            points = rng.randint(0, 9999)
            fee = FeeAssessedV1(posting_id=pid, customer_id=cid, fee_id="atm_interbank", tier="gold", base=net,
                                waived="0.00", discount="0.00", points_used=0, net=net, rules=["base"],
                                posted_at=at(today, 7, k), points_balance=points)
            phases["strata"].append(fee)
            if k == 0:
                phases["late"].append(fee)  # the same posting again under a new event id
            c.fees[pid] = net
            c.points = points
        customers.append(c)
    return customers, phases


def expected_360(c: Customer, everyone: dict[str, Customer]) -> dict:
    final_aum = c.aum[-1] if c.aum else None
    final_tier = c.tiers[-1] if c.tiers else None
    household = c.record.household_id
    members = sorted(x.id for x in everyone.values() if household and x.record.household_id == household)
    aum_of = lambda x: x.aum[-1].aum if x.aum else ZERO  # noqa: E731
    return {
        "name": c.record.name, "home_branch_id": c.record.home_branch_id, "risk_level": c.record.risk_level,
        "tags": list(c.record.tags), "id_number": c.record.id_number, "phone": c.record.phone,
        "household": ({"members": members, "combined_aum": sum((aum_of(everyone[m]) for m in members), ZERO)}
                      if household else None),
        "attributes": {"tax": {"bracket": int(c.id[2:]) % 4}} if int(c.id[2:]) % 11 == 0 else {},
        "holdings": sorted((a.account_id, a.status, a.maturity_date, a.card_expiry) for a in c.accounts),
        "aum": final_aum.aum if final_aum else ZERO,
        "mtd_average_daily_aum": final_aum.mtd_average_daily_aum if final_aum else ZERO,
        "tier": final_tier.to if final_tier else "mass",
        "primary": c.primary,
        "open_signals": sorted(s for s, status in c.signals.items() if status == "open"),
        "points_balance": c.points,
        "fees_charged": sum(c.fees.values(), ZERO),
    }


def actual_360(body: dict) -> dict:
    p = body["profile"]
    household = p["household"]
    return {
        "name": p["name"], "home_branch_id": p["home_branch_id"], "risk_level": p["risk_level"],
        "tags": p["tags"], "id_number": p["id_number"], "phone": p["phone"],
        "household": ({"members": [m["customer_id"] for m in household["members"]],
                       "combined_aum": Decimal(household["combined_aum"])} if household else None),
        "attributes": {src: {k: v["value"] for k, v in attrs.items()} for src, attrs in p["attributes"].items()},
        "holdings": sorted((h["account_id"], h["status"],
                            date.fromisoformat(h["maturity_date"]) if h["maturity_date"] else None,
                            date.fromisoformat(h["card_expiry"]) if h["card_expiry"] else None)
                           for h in body["holdings"]),
        "aum": Decimal(body["aum"]), "mtd_average_daily_aum": Decimal(body["mtd_average_daily_aum"]),
        "tier": body["tier"], "primary": body["rm"]["primary"],
        "open_signals": sorted(s["id"] for s in body["open_signals"]),
        "points_balance": body["points_balance"], "fees_charged": Decimal(body["fees"]["charged_total"]),
    }


def expected_branch_view(customers: list[Customer], branch: str, view: str, today: date) -> dict:
    """The figures of one branch, from first principles: who is a member, each member's final
    AUM and tier, and each member's AUM at the end of each business day against the day before."""
    first = today.replace(day=1)
    if view == "home":
        members = [c for c in customers if c.record.home_branch_id == branch]
        accounts = [a for c in members for a in c.accounts if a.status != "closed"]
    else:
        members = [c for c in customers if any(a.branch_id == branch and a.status != "closed" for a in c.accounts)]
        accounts = [a for c in members for a in c.accounts if a.branch_id == branch and a.status != "closed"]
    by_tier = {t: {"customers": 0, "aum": ZERO} for t in TIERS}
    inflow, outflow = defaultdict(lambda: ZERO), defaultdict(lambda: ZERO)
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    upgrades = downgrades = 0
    for c in members:
        final = c.aum[-1] if c.aum else None
        t = c.tiers[-1].to if c.tiers else "mass"
        by_tier[t]["customers"] += 1
        by_tier[t]["aum"] += final.aum if final else ZERO
        if final:
            for k, v in {**final.by_product_type, **final.liabilities}.items():
                balances[k] += v
        end_of_day: dict[date, Decimal] = {}
        for e in c.aum:
            end_of_day[e.business_date] = e.aum
        previous = ZERO
        for d in sorted(end_of_day):
            net = end_of_day[d] - previous
            previous = end_of_day[d]
            inflow[d] += max(net, ZERO)
            outflow[d] += max(-net, ZERO)
        for change in c.tiers:
            if first <= change.effective_at.astimezone(ZONE).date() <= today:
                upgrades += change.change == "upgrade"
                downgrades += change.change == "downgrade"
    products: dict[str, dict] = {}
    for product_type in {a.product_type for a in accounts} | set(balances):
        held = [a for a in accounts if a.product_type == product_type]
        products[product_type] = {"accounts": len(held), "customers": len({a.customer_id for a in held}),
                                  "balance": balances.get(product_type, ZERO)}
    in_month = [d for d in inflow if first <= d <= today]
    return {
        "by_tier": by_tier, "customers": len(members), "aum": sum((v["aum"] for v in by_tier.values()), ZERO),
        "deposits": {"demand_deposit": balances["demand_deposit"], "time_deposit": balances["time_deposit"]},
        "products": products,
        "inflow_today": inflow[today], "outflow_today": outflow[today],
        "inflow_mtd": sum((inflow[d] for d in in_month), ZERO),
        "outflow_mtd": sum((outflow[d] for d in in_month), ZERO),
        "tier_changes_mtd": {"upgrades": upgrades, "downgrades": downgrades},
    }


def actual_branch_view(body: dict) -> dict:
    return {
        "by_tier": {t: {"customers": v["customers"], "aum": Decimal(v["aum"])} for t, v in body["by_tier"].items()},
        "customers": body["customers"], "aum": Decimal(body["aum"]),
        "deposits": {k: Decimal(body["deposits"][k]) for k in ("demand_deposit", "time_deposit")},
        "products": {k: {"accounts": v["accounts"], "customers": v["customers"], "balance": Decimal(v["balance"])}
                     for k, v in body["products"].items()},
        **{k: Decimal(body[k]) for k in ("inflow_today", "outflow_today", "inflow_mtd", "outflow_mtd")},
        "tier_changes_mtd": body["tier_changes_mtd"],
    }


async def publish_and_apply(strata, items: list, timeout: float = 240.0) -> None:
    """Publish, wait until profile has recorded every event id (a cheap count, where asking
    the broker for offsets every few milliseconds would cost more than the consuming), then
    settle."""
    group = strata.runtime.loops["profile"].group
    async with strata.runtime.db.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(ProcessedEvent)
                                      .where(ProcessedEvent.consumer == group))
    for start in range(0, len(items), 2000):
        await strata.publish(*items[start:start + 2000])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with strata.runtime.db.sessions() as session:
            done = await session.scalar(select(func.count()).select_from(ProcessedEvent)
                                        .where(ProcessedEvent.consumer == group))
        if done >= before + len(items):
            break
        await asyncio.sleep(0.25)
    await strata.settle(timeout=timeout)


async def test_360_and_branch_reports_equal_figures_computed_from_the_same_kafka_input():
    today = datetime.now(timezone.utc).astimezone(ZONE).date()
    customers, phases = generate(CUSTOMERS, today)
    everyone = {c.id: c for c in customers}
    async with distributed(["profile"]) as strata:
        started = time.monotonic()
        for phase in ("master", "strata", "late"):
            await publish_and_apply(strata, phases[phase])
        elapsed = time.monotonic() - started
        events = sum(len(v) for v in phases.values())
        print(f"\nprofile applied {events} events from Kafka in {elapsed:.1f} s ({events / elapsed:.0f}/s)")

        sample = random.Random(7).sample(customers, min(SAMPLED_360, len(customers)))
        for c in sample:
            response = await strata.get(f"/v1/customers/{c.id}", role="admin")
            assert response.status_code == 200, response.text
            assert actual_360(response.json()) == expected_360(c, everyone), c.id

        for branch in BRANCHES:
            response = await strata.get(f"/v1/branches/{branch}/report", role="branch_manager", branch_id=branch,
                                        params={"date": today.isoformat()})
            assert response.status_code == 200, response.text
            body = response.json()
            assert actual_branch_view(body) == expected_branch_view(customers, branch, "home", today), branch
            assert actual_branch_view(body["account_holders"]) == \
                expected_branch_view(customers, branch, "account", today), branch
            other = BRANCHES[(BRANCHES.index(branch) + 1) % len(BRANCHES)]
            refused = await strata.get(f"/v1/branches/{branch}/report", role="branch_manager", branch_id=other)
            assert refused.status_code == 403

        stale = await strata.get("/v1/branches/BR-STALE/report", role="analyst")
        assert stale.status_code == 404, "no older master data record moved a customer there"


# --- a 100,000-member segment as CSV ----------------------------------------------------------


async def seed_customers(strata, n: int) -> None:
    """Rows straight into PostgreSQL with COPY (publishing 100,000 customers through Kafka
    would only slow the test; the export, not the ingestion, is under test here)."""
    rng = random.Random(5)
    columns = ["customer_id", "name", "phone", "home_branch_id", "risk_level", "tags", "auto_points_offset",
               "aum", "mtd_average_daily_aum", "aum_by_product_type", "liabilities", "tier", "watch",
               "open_signals", "fees_charged", "fees_priced", *BALANCE_COLUMNS.values()]
    records = []
    for i in range(n):
        cents = rng.randint(50_000_00, 999_999_99)
        records.append((f"SX{i:07d}", f"客户{i}", f"139{i:08d}", BRANCHES[i % len(BRANCHES)], "C3", "[]", False,
                        cents, cents, "{}", "{}", "gold" if cents < 200_000_00 else "platinum", False, 0, 0, 0,
                        cents, *[0] * (len(BALANCE_COLUMNS) - 1)))
    access = [("profile", f"SX{i:07d}", BRANCHES[i % len(BRANCHES)], "RM-BIG" if i % 10 == 0 else None)
              for i in range(n)]
    async with strata.runtime.db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.copy_records_to_table("profile_customers", records=records, columns=columns)
        await raw.copy_records_to_table("runtime_customer_access", records=access,
                                        columns=["service", "customer_id", "branch_id", "primary_rm"])
        await conn.commit()


def rss_bytes(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    """Start VmHWM afresh (Linux 4.0+); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


@dataclass
class Export:
    rows: int = 0
    size: int = 0
    first: str = ""
    peak_rss: int = 0


async def stream_csv(base: str, headers: dict, params: dict) -> Export:
    """Count the rows and bytes of an export as they arrive, keeping none of them (but the
    first data row), and sample this process's resident memory meanwhile."""
    export, pending, lines_seen = Export(), b"", 0
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        async with client.stream("GET", "/v1/segments/core-value-band/members", headers=headers,
                                 params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            async for chunk in response.aiter_bytes():
                export.size += len(chunk)
                lines = (pending + chunk).split(b"\r\n")
                pending = lines.pop()
                if lines_seen < 2 <= lines_seen + len(lines):
                    export.first = lines[1 - lines_seen].decode()
                lines_seen += len(lines)
                export.peak_rss = max(export.peak_rss, rss_bytes())
    export.rows = lines_seen - 1  # the header
    return export


async def test_a_100000_member_segment_streams_as_csv_with_bounded_memory():
    async with distributed(["profile"]) as strata:
        await seed_customers(strata, SEGMENT_MEMBERS)
        server = uvicorn.Server(uvicorn.Config(strata.app, host="127.0.0.1", port=0, log_level="warning",
                                               lifespan="off"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        try:
            baseline = rss_bytes()
            exact = reset_peak_rss()
            started = time.monotonic()
            export = await stream_csv(base, {**strata.token("analyst"), "Accept": "text/csv"}, {})
            seconds = time.monotonic() - started
            peak = max(export.peak_rss, rss_bytes("VmHWM") if exact else 0) - baseline
            print(f"\nexported {export.rows} rows, {export.size / 1e6:.1f} MB in {seconds:.1f} s; resident "
                  f"memory grew by at most {peak / 1e6:.1f} MB")
            assert export.rows == SEGMENT_MEMBERS
            assert peak < EXPORT_PEAK_BYTES, f"resident memory grew {peak} bytes while streaming {export.size}"
            cells = next(csv.reader(io.StringIO(export.first)))
            assert cells[0] == "SX0000000" and cells[12] == "139****0000"

            mine = await stream_csv(base, {**strata.token("rm", rm_id="RM-BIG")}, {"format": "csv"})
            assert mine.rows == SEGMENT_MEMBERS // 10, "an RM's export holds only their customers"
        finally:
            server.should_exit = True
            await serving
