"""A handover's dry run: decided exactly as the real one, answering where each customer would go,
with nothing written or emitted."""

from __future__ import annotations

from tests.unit.assignment.test_assignment_service import book_of, emitted, put_rm, seat, unique
from tests.unit.assignment.test_assignment_worklist import book


async def test_a_handover_dry_run_answers_where_each_customer_would_go_and_changes_nothing(solo):
    branch, leaving, t1, t2 = unique("BR"), unique("L"), unique("T1"), unique("T2")
    await put_rm(solo, leaving, branch)
    customers = sorted(unique("C") for _ in range(4))
    await book(solo, branch, *[(c, "客户", "gold") for c in customers])
    await put_rm(solo, t1, branch)
    await put_rm(solo, t2, branch)  # the customers get their backups
    await solo.settle()
    before = {c: len(emitted(solo, c)) for c in customers}
    trail = len((await solo.get(f"/v1/customers/{customers[0]}/assignments")).json()["items"])

    dry = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "leaves", "deactivate": True, "dry_run": True})
    assert dry.status_code == 200, dry.text
    answer = dry.json()
    assert (answer["moved"], answer["deactivated"], answer["dry_run"]) == (4, True, True)
    primaries = [p for p in answer["preview"] if p["change"] == "primary"]
    assert [p["customer_id"] for p in primaries] == customers
    assert all(p["from"] == leaving and p["to"] in (t1, t2) for p in primaries)
    assert sorted(p["to"] for p in primaries).count(t1) == 2, "balanced as the real handover would be"
    assert all(p["reason"].startswith("handover") for p in primaries)

    assert await book_of(solo, leaving) == 4 and await book_of(solo, t1) == await book_of(solo, t2) == 0
    assert (await seat(solo, customers[0])).primary_rm == leaving
    assert (await solo.get(f"/v1/rms/{leaving}")).json()["active"] is True
    await solo.settle()
    assert {c: len(emitted(solo, c)) for c in customers} == before, "nothing emitted"
    assert len((await solo.get(f"/v1/customers/{customers[0]}/assignments")).json()["items"]) == trail

    real = (await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "leaves", "deactivate": True})).json()
    assert (real["moved"], real["dry_run"], real["preview"]) == (4, False, [])
    moved_to = {c: (await seat(solo, c)).primary_rm for c in customers}
    assert moved_to == {p["customer_id"]: p["to"] for p in primaries}, "the dry run answered what happened"


async def test_a_handover_dry_run_that_cannot_place_everyone_is_refused_like_the_real_one(solo):
    branch, leaving, t1 = unique("BR"), unique("L"), unique("T1")
    await put_rm(solo, leaving, branch)
    customers = [unique("C") for _ in range(3)]
    await book(solo, branch, *[(c, "客户", "gold") for c in customers])
    await put_rm(solo, t1, branch, capacity=1)
    refused = await solo.post(f"/v1/rms/{leaving}/handover", {"reason": "x", "to": [t1], "dry_run": True})
    assert refused.status_code == 409 and len(refused.json()["unplaced"]) == 2
    assert await book_of(solo, t1) == 0
