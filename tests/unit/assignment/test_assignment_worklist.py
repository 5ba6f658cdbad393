"""The RM's worklist as the workbench's morning page reads it: names, watch, months below, the
types of open signals, the home branch, the book's counts, filters by tier, watch and a prefix."""

from __future__ import annotations

from datetime import timedelta

from shared.contracts.events import SignalV1
from tests.unit.assignment.stream import T0, customer_record, tier_record
from tests.unit.assignment.test_assignment_service import put_rm, unique


async def book(solo, branch: str, *customers: tuple[str, str, str]) -> None:
    """Customers of ``branch`` (id, name, tier) become known, then reach their tiers."""
    await solo.publish(*[customer_record(c, branch, T0, name=name) for c, name, _ in customers])
    await solo.settle()
    await solo.publish(*[tier_record(c, tier, at=T0 + timedelta(minutes=1)) for c, _, tier in customers])
    await solo.settle()


def signal(customer_id: str, rm_id: str, branch: str, signal_type: str, status: str = "open") -> SignalV1:
    return SignalV1(id=unique("S"), signal_type=signal_type, customer_id=customer_id, rm_id=rm_id,
                    branch_id=branch, status=status, raised_at=T0, evidence={})


async def test_worklist_items_carry_name_watch_months_below_open_signal_types_and_branch(solo):
    branch, a = unique("BR"), unique("RM")
    await put_rm(solo, a, branch)
    c, d = unique("C"), unique("C")
    await book(solo, branch, (c, "李娜", "gold"), (d, "张伟", "gold"))
    await solo.publish(tier_record(c, "gold", "watch", T0 + timedelta(days=21)),
                       signal(c, a, branch, "vip_outflow"), signal(c, a, branch, "birthday"),
                       signal(c, a, branch, "near_upgrade", status="acknowledged"))
    await solo.settle()
    items = {i["customer_id"]: i for i in
             (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a)).json()["items"]}
    assert {k: items[c][k] for k in ("name", "watch", "months_below", "open_signal_types", "branch_id",
                                     "home_branch_id", "open_signals")} == {
        "name": "李娜", "watch": True, "months_below": 1, "open_signal_types": ["birthday", "vip_outflow"],
        "branch_id": branch, "home_branch_id": branch, "open_signals": 2}
    assert {k: items[d][k] for k in ("name", "watch", "months_below", "open_signal_types")} == {
        "name": "张伟", "watch": False, "months_below": 0, "open_signal_types": []}


async def test_worklist_counts_the_whole_book_whatever_the_filters(solo):
    branch, a = unique("BR"), unique("RM")
    await put_rm(solo, a, branch)
    await put_rm(solo, unique("RM2"), branch, "L2")
    due, late, later, watched = (unique("C") for _ in range(4))
    await book(solo, branch, (due, "甲", "gold"), (late, "乙", "gold"), (later, "丙", "gold"), (watched, "丁", "gold"))
    await solo.publish(tier_record(watched, "gold", "watch", T0 + timedelta(days=21)),
                       signal(due, a, branch, "birthday"), signal(late, a, branch, "vip_outflow"),
                       signal(late, a, branch, "near_upgrade", status="done"))
    await solo.settle()
    today = solo.runtime.clock.today()
    for customer, next_date in ((due, today), (late, today - timedelta(days=1)), (later, today + timedelta(days=3))):
        logged = await solo.post(f"/v1/customers/{customer}/follow-ups", {
            "channel": "phone", "outcome": "interested", "next_date": next_date.isoformat(),
            "contacted_at": f"{(today - timedelta(days=5)).isoformat()}T10:00:00+08:00"}, role="rm", rm_id=a)
        assert logged.status_code == 201, logged.text
    expected = {"customers": 4, "watch": 1, "contacts_due_today": 1, "contacts_overdue": 1, "open_signals": 2}
    page = (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a, params={"limit": 1})).json()
    assert page["counts"] == expected
    narrowed = (await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a, params={"watch": "true"})).json()
    assert narrowed["counts"] == expected and [i["customer_id"] for i in narrowed["items"]] == [watched]


async def test_worklist_filters_by_tiers_watch_and_an_id_or_name_prefix(solo):
    branch, a = unique("BR"), unique("RM")
    await put_rm(solo, a, branch)  # L1: gold and platinum
    gold, platinum, watched = unique("G"), unique("P"), unique("W")
    await book(solo, branch, (gold, "Wang Fang", "gold"), (platinum, "Li Na", "platinum"),
               (watched, "Wang Lei", "gold"))
    await solo.publish(tier_record(watched, "gold", "watch", T0 + timedelta(days=21)))
    await solo.settle()

    async def listed(**params) -> set[str]:
        response = await solo.get(f"/v1/rms/{a}/worklist", role="rm", rm_id=a, params=params)
        assert response.status_code == 200, response.text
        return {i["customer_id"] for i in response.json()["items"]}

    assert await listed() == {gold, platinum, watched}
    assert await listed(tier="platinum") == {platinum}
    assert await listed(tier=["platinum", "gold"]) == {gold, platinum, watched}
    assert await listed(watch="true") == {watched}
    assert await listed(watch="false", tier="gold") == {gold}
    assert await listed(q="wang") == {gold, watched}, "a name prefix, in any case"
    assert await listed(q="wang l") == {watched}
    assert await listed(q=platinum[:6].lower()) == {platinum}, "a customer id prefix"
    assert await listed(q="Na") == set(), "a prefix, not a part"
    assert await listed(q="%") == set(), "a wildcard is a character like any other"
    unknown = await solo.get(f"/v1/rms/{a}/worklist", params={"tier": "ruby"})
    assert unknown.status_code == 422 and "ruby" in unknown.json()["detail"]


async def test_a_worklist_cursor_keeps_its_filters(solo):
    branch, a = unique("BR"), unique("RM")
    await put_rm(solo, a, branch)
    customers = [(unique("C"), f"Zhao {i}", "gold") for i in range(3)]
    await book(solo, branch, *customers)
    first = (await solo.get(f"/v1/rms/{a}/worklist", params={"tier": "gold", "limit": 2})).json()
    assert first["next"] is not None
    rest = await solo.get(f"/v1/rms/{a}/worklist", params={"tier": "gold", "limit": 2, "cursor": first["next"]})
    assert rest.status_code == 200 and len(rest.json()["items"]) == 1
    other = await solo.get(f"/v1/rms/{a}/worklist", params={"tier": "platinum", "cursor": first["next"]})
    assert other.status_code == 422
