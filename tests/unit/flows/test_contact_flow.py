"""A follow-up an RM logs reaches the customer 360 and the segment templates as the last contact."""

from __future__ import annotations

from shared.contracts.events import CustomerV1, PostingV1
from tests.conftest import private_strata


async def test_follow_up_logged_by_the_rm_becomes_the_customers_last_contact():
    async with private_strata() as strata:
        put = await strata.client.put("/v1/rms/RM-FLOW-1", headers=strata.token("admin"), json={
            "rm_id": "RM-FLOW-1", "name": "李敏", "branch_id": "BR-FLOW", "level": "L1",
            "capacity": 50, "active": True})
        assert put.status_code in (200, 201), put.text
        await strata.publish(CustomerV1(customer_id="CF1", name="王芳", home_branch_id="BR-FLOW",
                                        updated_at="2026-11-01T09:00:00+08:00"))
        await strata.settle()
        await strata.publish(PostingV1(
            posting_id="PF1", customer_id="CF1", account_id="AF1", account_seq=1,
            product_type="demand_deposit", direction="credit", amount="80000.00",
            balance_after="80000.00", currency="CNY", tx_type="salary", channel="batch",
            branch_id="BR-FLOW", posted_at="2026-11-10T09:00:00+08:00"))
        await strata.settle()
        view = (await strata.get("/v1/customers/CF1")).json()
        assert view["rm"]["primary"] == "RM-FLOW-1"
        logged = await strata.client.post("/v1/customers/CF1/follow-ups", headers=strata.token("rm", rm_id="RM-FLOW-1"), json={
            "channel": "phone", "note": "discussed the 3-year deposit", "outcome": "interested",
            "contacted_at": "2026-11-12T10:00:00+08:00", "next_date": "2026-11-20"})
        assert logged.status_code == 201, logged.text
        await strata.settle()
        view = (await strata.get("/v1/customers/CF1")).json()
        assert view["last_contact"] == "2026-11-12T10:00:00+08:00", view
