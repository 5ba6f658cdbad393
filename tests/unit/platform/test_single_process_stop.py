"""The in-memory bus forgets what it holds when the process ends: a stop must first let every
published event be consumed and every committed outbox row be published, so that running
Strata again from the same data directory finds nothing lost."""

import tempfile

from sqlalchemy import func, select

from services.pricing.models import PricingFee
from services.profile.models import ProfileCustomer
from shared.contracts.events import CustomerV1, PostingV1
from strata.registry import load_all
from strata.testing import Harness
from tests.conftest import single_process_settings
from tests.unit.security.bad_events import customer_data, posting_data


async def test_a_stop_right_after_publishing_loses_nothing_across_a_restart():
    with tempfile.TemporaryDirectory(prefix="strata-stop-") as tmp:
        first = await Harness(single_process_settings(tmp), load_all()).start()
        customers = [f"STOP-{n}" for n in range(20)]
        await first.publish(*[CustomerV1.model_validate(customer_data(c)) for c in customers])
        await first.publish(*[PostingV1.model_validate(posting_data(c, amount="1200.00", balance_after="1200.00"))
                              for c in customers])
        await first.stop()  # no settle: the postings, and what they cause, are still in flight

        second = await Harness(single_process_settings(tmp), load_all()).start()
        try:
            async with second.runtime.db.sessions() as session:
                fees = await session.scalar(select(func.count()).select_from(PricingFee)
                                            .where(PricingFee.customer_id.in_(customers)))
                aum = await session.scalar(select(func.sum(ProfileCustomer.aum))
                                           .where(ProfileCustomer.customer_id.in_(customers)))
            assert fees == len(customers)  # tiering -> strata.postings.tiered -> pricing, all done
            assert aum == 20 * 1200  # tiering -> strata.aum -> profile
        finally:
            await second.stop()
