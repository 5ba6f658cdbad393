"""Assignment through the single-process harness: tiering's stream in (customer records, tier
decisions, AUM), RMs assigned, the API on top.

Every test works in its own branch (and its own customer ids), so the shared harness's other
customers and RMs never take part in its decisions.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from prometheus_client import REGISTRY

from shared.access import CustomerAccess
from shared.contracts.cloudevents import decode_record
from shared.contracts.events import CustomerV1, PostingV1, SignalV1
from services.assignment.models import AssignmentBook, AssignmentCustomer
from services.assignment.service import refresh_gauges
from tests.unit.assignment.stream import T0, aum_record, customer_record, tier_record


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tier_event(customer_id: str, to: str, change: str = "upgrade", at: datetime = T0):
    return tier_record(customer_id, to, change, at)


def customer_event(customer_id: str, branch: str, at: datetime = T0):
    return customer_record(customer_id, branch, at)


async def put_rm(strata, rm_id: str, branch: str, level: str = "L1", *, capacity=None, active=True,
                 role: str = "admin", token_ids: dict | None = None):
    body = {"name": f"RM {rm_id}", "branch_id": branch, "level": level, "capacity": capacity, "active": active}
    return await strata.client.put(f"/v1/rms/{rm_id}", json=body, headers=strata.token(role, **(token_ids or {})))


async def arrive(strata, branch: str, *customers: tuple[str, str]) -> None:
    """Customers of ``branch`` become known, then reach the given tiers (mass -> tier)."""
    await strata.publish(*[customer_event(c, branch) for c, _ in customers])
    await strata.settle()
    await strata.publish(*[tier_event(c, t) for c, t in customers])
    await strata.settle()


def emitted(strata, customer_id: str) -> list:
    """The ``strata.assignment_changed.v1`` events on the bus for one customer, in order."""
    events = []
    for partition in strata.runtime.bus.topics.get("strata.assignments", []):
        for record in partition.records:
            event = decode_record(record.value, record.headers)
            if event.data.customer_id == customer_id:
                events.append((record.key, event))
    return [e for _, e in events] if all(k == customer_id.encode() for k, _ in events) else []


async def seat(strata, customer_id: str) -> AssignmentCustomer:
    async with strata.runtime.db.sessions() as session:
        return await session.get(AssignmentCustomer, customer_id)


async def book_of(strata, rm_id: str, role: str = "primary") -> int:
    async with strata.runtime.db.sessions() as session:
        rows = (await session.execute(
            AssignmentBook.__table__.select().where(AssignmentBook.rm_id == rm_id, AssignmentBook.role == role)
        )).all()
    return sum(r.customers for r in rows)


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- tier events ---------------------------------------------------------------------------


async def test_gold_upgrade_gets_a_primary_and_a_backup_with_events_and_audit(solo):
    branch, c = unique("BR"), unique("C")
    a, b = unique("RM-A"), unique("RM-B")
    assert (await put_rm(solo, a, branch)).status_code == 200
    assert (await put_rm(solo, b, branch)).status_code == 200
    await arrive(solo, branch, (c, "gold"))
    row = await seat(solo, c)
    assert (row.primary_rm, row.backup_rm, row.standing) == (min(a, b), max(a, b), "assigned")
    events = emitted(solo, c)
    assert [(e.data.role, e.data.from_, e.data.to, e.data.tier, e.data.branch_id) for e in events] == [
        ("primary", None, row.primary_rm, "gold", branch), ("backup", None, row.backup_rm, "gold", branch)]
    assert events[0].data.reason.startswith("balanced_distribution: gold needs L1")
    trail = (await solo.get(f"/v1/customers/{c}/assignments")).json()
    assert [(i["role"], i["from"], i["to"], i["reason"]) for i in trail["items"]] == [
        ("primary", None, row.primary_rm, "balanced_distribution"),
        ("backup", None, row.backup_rm, "balanced_distribution")]
    assert trail["items"][0]["actor"] == "system" and trail["items"][0]["cause"].startswith("event:")
    assert (trail["primary"], trail["backup"]) == (row.primary_rm, row.backup_rm)


async def test_every_service_learns_the_assignment_from_the_bus(strata):
    """Through the whole pipeline: core banking's customer and a posting reaching gold, tiering's
    stream, assignment, and the assignment back at every service."""
    branch, c = unique("BR"), unique("C")
    a, b = unique("RM-A"), unique("RM-B")
    await put_rm(strata, a, branch)
    await put_rm(strata, b, branch)
    await strata.publish(CustomerV1(customer_id=c, name="王芳", home_branch_id=branch, updated_at=T0))
    await strata.settle()
    await strata.publish(PostingV1(
        posting_id=f"{c}-P1", customer_id=c, account_id=f"{c}-DD", account_seq=1, product_type="demand_deposit",
        direction="credit", amount="60000.00", balance_after="60000.00", currency="CNY", tx_type="salary",
        channel="batch", branch_id=branch, posted_at=T0 + timedelta(hours=1)))
    await strata.settle()
    async with strata.runtime.db.sessions() as session:
        access = await session.get(CustomerAccess, ("tiering", c))
    assert (access.primary_rm, access.backup_rm) == (min(a, b), max(a, b)), \
        "strata.assignments reached the other services' access projection"
    assert (await strata.get(f"/v1/customers/{c}/tier", role="rm", rm_id=b)).status_code == 200


async def test_the_same_upgrade_under_another_event_id_assigns_once(solo):
    branch, c, a = unique("BR"), unique("C"), unique("RM")
    await put_rm(solo, a, branch)
    await arrive(solo, branch, (c, "gold"))
    await solo.publish(tier_event(c, "gold"), tier_event(c, "gold", "watch"))
    await solo.settle()
    assert await book_of(solo, a) == 1
    trail = (await solo.get(f"/v1/customers/{c}/assignments")).json()["items"]
    assert len([i for i in trail if i["role"] == "primary"]) == 1


async def test_tier_event_before_the_home_branch_waits_then_assigns(solo):
    branch, c, a = unique("BR"), unique("C"), unique("RM")
    await put_rm(solo, a, branch)
    await solo.publish(tier_event(c, "gold"))
    await solo.settle()
    assert (await seat(solo, c)).standing == "waiting"
    await solo.publish(customer_event(c, branch))
    await solo.settle()
    assert (await seat(solo, c)).primary_rm == a


async def test_upgrade_moves_to_the_new_level_and_keeps_the_old_rm_as_backup(solo):
    branch, c = unique("BR"), unique("C")
    g1, g2, p1 = unique("G1"), unique("G2"), unique("P1")
    await put_rm(solo, g1, branch, "L1")
    await put_rm(solo, g2, branch, "L1", capacity=0)
    await put_rm(solo, p1, branch, "L2")
    await arrive(solo, branch, (c, "gold"))
    assert (await seat(solo, c)).primary_rm == g1
    await solo.publish(tier_event(c, "platinum"))
    await solo.settle()
    row = await seat(solo, c)
    assert (row.tier, row.primary_rm, row.backup_rm) == ("platinum", p1, g1)
    assert await book_of(solo, g1) == 0 and await book_of(solo, p1) == 1
    trail = (await solo.get(f"/v1/rms/{g1}/assignments")).json()["items"]
    assert ("primary", g1, p1, "tier_change") in [(i["role"], i["from"], i["to"], i["reason"]) for i in trail]


async def test_downgrade_to_mass_returns_to_the_pool_and_frees_room_for_a_waiting_customer(solo):
    branch, a = unique("BR"), unique("RM")
    first, second = unique("C1"), unique("C2")
    await put_rm(solo, a, branch, capacity=1)
    await arrive(solo, branch, (first, "gold"), (second, "gold"))
    waiting = [c for c in (first, second) if (await seat(solo, c)).standing == "waiting"]
    assert len(waiting) == 1
    holder = first if waiting[0] == second else second
    await solo.publish(tier_event(holder, "mass", "downgrade"))
    await solo.settle()
    released, picked = await seat(solo, holder), await seat(solo, waiting[0])
    assert (released.primary_rm, released.standing) == (None, "pool")
    assert (picked.primary_rm, picked.standing) == (a, "no_backup")
    trail = (await solo.get(f"/v1/customers/{waiting[0]}/assignments")).json()["items"]
    primary = [i for i in trail if i["role"] == "primary"]
    assert [(i["from"], i["to"], i["reason"]) for i in primary] == [(None, a, "capacity_available")]


async def test_home_branch_change_moves_the_customer_to_the_new_branch(solo):
    old, new, c = unique("BR"), unique("BR"), unique("C")
    a, b = unique("RM"), unique("RM")
    await put_rm(solo, a, old)
    await put_rm(solo, b, new)
    await arrive(solo, old, (c, "gold"))
    await solo.publish(customer_event(c, new, T0 + timedelta(days=1)))
    await solo.publish(customer_event(c, old, T0 - timedelta(days=1)))  # older record: ignored
    await solo.settle()
    row = await seat(solo, c)
    assert (row.home_branch_id, row.primary_rm) == (new, b)


async def test_unknown_tier_goes_to_the_dead_letter_topic(solo):
    c = unique("C")
    await solo.publish(tier_event(c, "emerald"))
    await solo.settle()
    dead = [r for p in solo.runtime.bus.topics["strata.tiering.changes.dlq"] for r in p.records if r.key == c.encode()]
    assert len(dead) == 1 and b"emerald" in dict(dead[0].headers)["strata_dlq_reason"]
    row = await seat(solo, c)
    assert row is None or row.tier == "mass"


# --- capacity and the registry ------------------------------------------------------------


async def test_full_branch_leaves_customers_unassigned_counted_until_a_new_rm_arrives(solo):
    branch, a, late = unique("BR"), unique("RM"), unique("RM")
    customers = [unique("C") for _ in range(3)]
    await put_rm(solo, a, branch, capacity=1)
    await arrive(solo, branch, *[(c, "gold") for c in customers])
    assert sorted([(await seat(solo, c)).standing for c in customers]) == ["no_backup", "waiting", "waiting"]
    async with solo.runtime.db.sessions() as session:
        await refresh_gauges(session, solo.settings)
    assert metric("strata_assignment_unassigned_customers") >= 2
    metrics_text = (await solo.client.get("/metrics")).text
    assert "strata_assignment_unassigned_customers" in metrics_text
    response = await put_rm(solo, late, branch, capacity=10)
    assert response.json()["picked_up"] == 2
    rows = [await seat(solo, c) for c in customers]
    assert all(r.primary_rm in (a, late) and r.backup_rm in (a, late) for r in rows)
    assert all(r.standing == "assigned" for r in rows)


async def test_registry_is_admin_only_and_validates_levels(solo):
    branch, a = unique("BR"), unique("RM")
    assert (await put_rm(solo, a, branch, role="analyst")).status_code == 403
    assert (await put_rm(solo, a, branch, role="rm", token_ids={"rm_id": a})).status_code == 403
    bad = await put_rm(solo, a, branch, "L9")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert (await put_rm(solo, a, branch, capacity={"emerald": 3})).status_code == 422
    assert (await put_rm(solo, a, branch, capacity={"gold": 3})).json()["capacity"] == {"gold": 3}
    listed = (await solo.get("/v1/rms", params={"branch_id": branch})).json()
    assert [(i["rm_id"], i["level"], i["capacity"], i["active"]) for i in listed["items"]] == [
        (a, "L1", {"gold": 3}, True)]
    own = (await solo.get("/v1/rms", role="rm", rm_id=a)).json()
    assert [i["rm_id"] for i in own["items"]] == [a]


async def test_deactivation_is_refused_until_the_book_is_handed_over(solo):
    branch, a, b, c = unique("BR"), unique("RM-A"), unique("RM-B"), unique("C")
    await put_rm(solo, a, branch)
    await arrive(solo, branch, (c, "gold"))
    await put_rm(solo, b, branch)
    refused = await put_rm(solo, a, branch, active=False)
    assert refused.status_code == 409 and "hand the book over" in refused.json()["detail"]
    assert (await put_rm(solo, a, branch, "L2")).status_code == 409
    done = await solo.post(f"/v1/rms/{a}/handover", {"reason": "leaves the bank"})
    assert done.json() == {"moved": 1, "backups_replaced": 0, "deactivated": False, "dry_run": False, "preview": []}
    assert (await put_rm(solo, a, branch, active=False)).status_code == 200
    assert (await seat(solo, c)).primary_rm == b


# --- handover ------------------------------------------------------------------------------


async def test_handover_spreads_300_customers_over_3_rms_within_one(solo):
    branch = unique("BR")
    leaving, takers = unique("LEAVING"), [unique("T") for _ in range(3)]
    await put_rm(solo, leaving, branch)
    customers = [unique("C") for _ in range(300)]
    await arrive(solo, branch, *[(c, "gold") for c in customers])
    assert await book_of(solo, leaving) == 300
    for t in takers:
        await put_rm(solo, t, branch)
    response = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "moves to head office",
                                                                 "deactivate": True})
    assert response.status_code == 200 and response.json()["moved"] == 300
    books = [await book_of(solo, t) for t in takers]
    assert sum(books) == 300 and max(books) - min(books) <= 1
    assert await book_of(solo, leaving) == 0 and await book_of(solo, leaving, "backup") == 0
    assert (await solo.get(f"/v1/rms/{leaving}")).json()["active"] is False
    trail = (await solo.get(f"/v1/customers/{customers[0]}/assignments")).json()["items"]
    handover = [i for i in trail if i["reason"] == "handover" and i["role"] == "primary"]
    assert handover and handover[0]["from"] == leaving and "moves to head office" in handover[0]["detail"]
    assert handover[0]["actor"].startswith("admin:")


async def test_handover_to_named_rms_and_refused_when_nobody_has_room(solo):
    branch, leaving, t1, t2 = unique("BR"), unique("L"), unique("T1"), unique("T2")
    await put_rm(solo, leaving, branch)
    customers = [unique("C") for _ in range(4)]
    await arrive(solo, branch, *[(c, "gold") for c in customers])
    await put_rm(solo, t1, branch, capacity=1)
    await put_rm(solo, t2, branch, capacity=1)
    refused = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x", "to": [t1, t2]})
    assert refused.status_code == 409 and len(refused.json()["unplaced"]) == 2
    assert await book_of(solo, leaving) == 4, "a refused handover moves nobody"
    await put_rm(solo, t2, branch, capacity=3)
    assert (await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x", "to": [t1, t2]})).json()["moved"] == 4
    bad = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x", "to": ["NOBODY"]})
    assert bad.status_code == 422


async def test_branch_manager_hands_over_in_their_branch_only(solo):
    branch, leaving = unique("BR"), unique("L")
    await put_rm(solo, leaving, branch)
    other = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x"}, role="branch_manager",
                              branch_id=unique("BR"))
    assert other.status_code == 403
    own = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x"}, role="branch_manager", branch_id=branch)
    assert own.status_code == 200 and own.json()["moved"] == 0
    assert (await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x"}, role="rm",
                              rm_id=leaving)).status_code == 403


# --- claims --------------------------------------------------------------------------------


async def test_rm_claims_a_customer_they_know_and_the_old_rm_becomes_backup(solo):
    branch, c = unique("BR"), unique("C")
    a, b = unique("A"), unique("B")
    await put_rm(solo, a, branch)
    await arrive(solo, branch, (c, "gold"))
    await put_rm(solo, b, branch)
    before = metric("strata_assignment_claims_total", outcome="accepted", reason="accepted")
    answer = await solo.post("/v1/assignments/claims", {"rm_id": b, "customer_id": c, "reason": "neighbour"},
                               role="rm", rm_id=b)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["primary"], body["backup"]) == (True, b, a)
    assert metric("strata_assignment_claims_total", outcome="accepted", reason="accepted") == before + 1
    trail = (await solo.get(f"/v1/customers/{c}/assignments", role="rm", rm_id=b)).json()["items"]
    assert trail[-2]["reason"] == "familiarity_claim" and trail[-2]["actor"] == f"rm:{b}"
    again = (await solo.post("/v1/assignments/claims", {"rm_id": b, "customer_id": c}, role="rm", rm_id=b)).json()
    assert (again["accepted"], again["code"]) == (False, "already_assigned")


async def test_claims_refused_with_the_reason(solo):
    branch, c, mass = unique("BR"), unique("C"), unique("C")
    a, senior, full = unique("A"), unique("S"), unique("F")
    await put_rm(solo, a, branch)
    await put_rm(solo, senior, branch, "L3")
    await arrive(solo, branch, (c, "gold"))
    await put_rm(solo, full, branch, capacity=0)
    await solo.publish(customer_event(mass, branch))
    await solo.settle()

    async def refused(rm_id, customer_id):
        answer = (await solo.post("/v1/assignments/claims", {"rm_id": rm_id, "customer_id": customer_id})).json()
        assert answer["accepted"] is False and answer["reason"]
        return answer["code"]

    before = metric("strata_assignment_claims_total", outcome="refused", reason="level_mismatch")
    assert await refused(senior, c) == "level_mismatch"
    assert metric("strata_assignment_claims_total", outcome="refused", reason="level_mismatch") == before + 1
    assert await refused(full, c) == "over_capacity"
    assert await refused(a, mass) == "not_above_mass"
    assert await refused(a, unique("NOBODY")) == "unknown_customer"
    assert await refused(unique("GHOST"), c) == "unknown_rm"
    elsewhere, off = unique("E"), unique("OFF")
    await put_rm(solo, elsewhere, unique("BR"))
    assert await refused(elsewhere, c) == "branch_mismatch"
    await put_rm(solo, off, branch, active=False)
    assert await refused(off, c) == "inactive_rm"


async def test_rm_cannot_claim_for_another_rm(solo):
    response = await solo.post("/v1/assignments/claims", {"rm_id": "SOMEONE", "customer_id": "C"},
                                 role="rm", rm_id="ME")
    assert response.status_code == 403


# --- worklists, follow-ups and who sees what ----------------------------------------------


async def test_worklist_lists_own_customers_sorted_and_paged_with_aum_contacts_and_open_signals(solo):
    branch, a = unique("BR"), unique("RM")
    await put_rm(solo, a, branch)
    await put_rm(solo, unique("RM2"), branch, "L2")
    rich, middle, poor = unique("C"), unique("C"), unique("C")
    await arrive(solo, branch, (rich, "gold"), (middle, "gold"), (poor, "gold"))
    for customer, aum in ((rich, "190000.00"), (middle, "90000.00"), (poor, "60000.00")):
        await solo.publish(aum_record(customer, aum, T0 + timedelta(minutes=1)))
    signal = unique("S")
    await solo.publish(
        SignalV1(id=signal, signal_type="near_upgrade", customer_id=middle, rm_id=a, branch_id=branch,
                 status="open", raised_at=T0, evidence={}),
        SignalV1(id=unique("S"), signal_type="birthday", customer_id=middle, rm_id=a, branch_id=branch,
                 status="open", raised_at=T0, evidence={}),
        SignalV1(id=signal, signal_type="near_upgrade", customer_id=middle, rm_id=a, branch_id=branch,
                 status="acknowledged", raised_at=T0, evidence={}),
    )
    await solo.settle()
    follow = await solo.post(f"/v1/customers/{poor}/follow-ups",
                               {"channel": "phone", "note": "asked about funds", "outcome": "interested",
                                "next_date": "2026-12-01", "contacted_at": "2026-11-20T10:00:00+08:00"},
                               role="rm", rm_id=a)
    assert follow.status_code == 201

    page = (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a,
                             params={"sort": "aum", "limit": 2})).json()
    assert [i["customer_id"] for i in page["items"]] == [rich, middle]
    assert page["items"][0]["aum"] == "190000.00" and page["items"][1]["open_signals"] == 1
    rest = (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a,
                             params={"sort": "aum", "limit": 2, "cursor": page["next"]})).json()
    assert [i["customer_id"] for i in rest["items"]] == [poor] and rest["next"] is None
    soonest = (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a,
                                params={"sort": "next_contact"})).json()["items"]
    assert soonest[0]["customer_id"] == poor and soonest[0]["next_contact"] == "2026-12-01"
    assert soonest[0]["last_contact"] == "2026-11-20T10:00:00+08:00"
    assert set(WORKLIST_FIELDS) <= set(soonest[0])


WORKLIST_FIELDS = ("customer_id", "tier", "aum", "last_contact", "next_contact", "open_signals")


async def test_an_rm_cannot_reach_another_rms_customers(solo):
    branch, c = unique("BR"), unique("C")
    mine, theirs = unique("RM"), unique("RM")
    await put_rm(solo, theirs, branch)
    await arrive(solo, branch, (c, "gold"))
    await put_rm(solo, mine, unique("BR"))
    as_me = {"role": "rm", "rm_id": mine}
    assert (await solo.get(f"/v1/rms/{theirs}/worklist", **as_me)).status_code == 403
    assert (await solo.get(f"/v1/rms/{theirs}/assignments", **as_me)).status_code == 403
    assert (await solo.get(f"/v1/customers/{c}/assignments", **as_me)).status_code == 403
    assert (await solo.get(f"/v1/customers/{c}/follow-ups", **as_me)).status_code == 403
    write = await solo.post(f"/v1/customers/{c}/follow-ups", {"channel": "visit", "outcome": "met"}, **as_me)
    assert write.status_code == 403 and write.json()["title"] == "Forbidden"
    assert (await solo.get(f"/v1/rms/{mine}/worklist", **as_me)).json()["items"] == []
    assert (await solo.get(f"/v1/customers/{c}/follow-ups", role="rm", rm_id=theirs)).status_code == 200


async def test_branch_manager_sees_their_branchs_rms_and_customers_only(solo):
    branch, c, a = unique("BR"), unique("C"), unique("RM")
    await put_rm(solo, a, branch)
    await arrive(solo, branch, (c, "gold"))
    own = {"role": "branch_manager", "branch_id": branch}
    other = {"role": "branch_manager", "branch_id": unique("BR")}
    assert [i["customer_id"] for i in (await solo.get(f"/v1/rms/{a}/worklist", **own)).json()["items"]] == [c]
    assert (await solo.get(f"/v1/rms/{a}/worklist", **other)).status_code == 403
    assert (await solo.get(f"/v1/customers/{c}/assignments", **own)).status_code == 200
    assert (await solo.get(f"/v1/customers/{c}/assignments", **other)).status_code == 403
    assert (await solo.get(f"/v1/rms/{a}/worklist", role="analyst")).status_code == 200


async def test_follow_ups_are_listed_newest_first_and_validated(solo):
    branch, c, a = unique("BR"), unique("C"), unique("RM")
    await put_rm(solo, a, branch)
    await arrive(solo, branch, (c, "gold"))
    for day in (1, 2, 3):
        response = await solo.post(f"/v1/customers/{c}/follow-ups", {
            "channel": "phone", "note": f"call {day}", "outcome": "reached",
            "contacted_at": f"2026-11-0{day}T09:00:00+08:00"}, role="rm", rm_id=a)
        assert response.status_code == 201
    listed = (await solo.get(f"/v1/customers/{c}/follow-ups", role="rm", rm_id=a,
                               params={"limit": 2})).json()
    assert [i["note"] for i in listed["items"]] == ["call 3", "call 2"] and listed["next"]
    assert listed["items"][0]["rm_id"] == a
    bad = await solo.post(f"/v1/customers/{c}/follow-ups", {
        "channel": "phone", "outcome": "x", "next_date": "2026-10-01",
        "contacted_at": "2026-11-05T09:00:00+08:00"}, role="rm", rm_id=a)
    assert bad.status_code == 422
    assert (await solo.post(f"/v1/customers/{c}/follow-ups", {"channel": "x", "outcome": "y"},
                              role="analyst")).status_code == 403
    row = await seat(solo, c)
    assert row.last_contact.date().isoformat() == "2026-11-03" and row.aum == Decimal("100.00")


async def test_a_claim_tells_an_rm_nothing_of_a_customer_outside_their_branch(solo):
    mine, theirs = unique("BR"), unique("BR")
    rm, owner = unique("A"), unique("B")
    await put_rm(solo, rm, mine)
    await put_rm(solo, owner, theirs)
    outsider, neighbour = unique("C"), unique("C")
    await arrive(solo, theirs, (outsider, "gold"))
    await arrive(solo, mine, (neighbour, "gold"))

    async def claim(customer_id, role="rm", **ids):
        return await solo.post("/v1/assignments/claims", {"rm_id": rm, "customer_id": customer_id},
                               role=role, **(ids or {"rm_id": rm}))

    nobody = unique("NOBODY")
    known, unknown = await claim(outsider), await claim(nobody)
    assert known.status_code == unknown.status_code == 403
    assert known.headers["content-type"] == "application/problem+json"
    for answer in (known, unknown):
        assert "gold" not in answer.text and owner not in answer.text and theirs not in answer.text
        assert set(answer.json()) == {"type", "title", "status", "detail", "instance"}
    assert known.json()["detail"].replace(outsider, "X") == unknown.json()["detail"].replace(nobody, "X"), \
        "a customer of another branch and one that does not exist are told apart by nothing"
    manager = await claim(outsider, role="branch_manager", branch_id=mine)
    assert manager.status_code == 403 and "gold" not in manager.text
    assert (await claim(neighbour)).json()["code"] in ("already_assigned", "accepted")
    assert (await claim(outsider, role="admin")).json()["code"] == "branch_mismatch"


async def test_a_follow_up_in_the_future_is_refused(solo):
    branch, c, rm = unique("BR"), unique("C"), unique("A")
    await put_rm(solo, rm, branch)
    await arrive(solo, branch, (c, "gold"))
    now = datetime.now(timezone.utc)
    body = {"channel": "phone", "outcome": "interested"}
    later = await solo.post(f"/v1/customers/{c}/follow-ups",
                            {**body, "contacted_at": (now + timedelta(hours=2)).isoformat()}, role="rm", rm_id=rm)
    assert later.status_code == 422 and "future" in later.json()["detail"]
    skewed = await solo.post(f"/v1/customers/{c}/follow-ups",
                             {**body, "contacted_at": (now + timedelta(minutes=2)).isoformat()}, role="rm", rm_id=rm)
    assert skewed.status_code == 201, "a clock a little ahead is allowed for"
