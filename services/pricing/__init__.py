"""Pricing: every posting priced once with the tier in force at it, free uses, contribution
discounts, points, products by tier, quotes and what-if re-pricing.

Why a posting gets the tier of its own moment
---------------------------------------------
Pricing never reads ``bank.postings``. It prices from ``strata.tiering.changes``, where tiering
passes every posting on with the tier in force for the customer right after applying it:

1. Core banking keys postings by ``customer_id``, so one customer's postings sit in one
   partition and tiering applies them one at a time, in that order.
2. Tiering writes the posting's effect (balance, AUM, an upgrade) and the tiered posting (its
   outbox row) in the same database transaction. The tier stamped on posting *n* is therefore
   exactly the tier after postings 1..n, never one ahead or behind, whatever is committed later.
3. The outbox relay publishes rows in the order they were written, keyed by ``customer_id``, so
   the tiered postings of one customer arrive in one partition of ``strata.tiering.changes``
   in the order tiering applied them, and pricing (one partition, one batch at a time) prices
   them in that order.

So a withdrawal posted before the salary that upgrades the customer carries the old tier and one
posted after it the new tier, whether pricing runs a millisecond or a day behind tiering: the
tier travels with the posting instead of being looked up when pricing gets round to it. Reading
``bank.postings`` and ``strata.tiers`` side by side could not give this: Kafka orders nothing
across topics, so how far one had been read when the other was would depend on lag. The tests
price postings after tiering has run far ahead (tests/unit/pricing/test_pricing_service.py,
tests/integration/test_pricing_kafka.py).

The tier of a posting is the tier tiering held when it applied it: a month-end downgrade takes
effect when the close runs, and a posting that arrives late (older ``posted_at`` than ones
already applied) is priced with the tier of its arrival. The tier decisions on the same stream
give the tier *now*, for quotes and product eligibility; core banking's customer records on it
give the offset choice and the risk preference, in the customer's order.

An upgrade decided late
-----------------------
Tiering applies a customer's facts in event-time order, waiting at most
``runtime.max_lateness`` for a quiet topic (``shared.runtime.order``). A fact that comes later
than that (a balance snapshot dated before postings already applied, say) is applied when it
comes, and an upgrade it causes is effective at the fact's own time: before postings pricing
has already priced at the lower tier. A fee already assessed has gone to core banking for
collection and is never rewritten. Instead, for each posting of the upgrade's calendar month
(Asia/Shanghai) posted after the moment it took effect and priced at a lower tier, pricing
prices the posting again at the new tier and, if that costs the customer less, corrects the
fee with an adjustment: a row (``pricing_fee_adjustments``, listed by
``GET /v1/customers/{id}/fees`` under ``adjustments``) and a ``strata.fee_adjusted.v1`` on
``strata.fee_adjustments`` saying the tier and net before and after, the difference to refund,
the points given back (points that paid the fee pay at most its new price) and the reason in
words. The month's free uses are counted again in the order of ``posted_at``, so the new tier's
free uses go to the earliest postings after the upgrade, and the month's counters say what was
given (``domain.reprice_after_upgrade``).

- Only in the customer's favour: a downgrade never re-prices what was charged, nor does a
  re-pricing that would cost more (the fee stands as charged, its free use counted).
- Only that calendar month: free uses and counters are monthly.
- Once: an adjustment's id derives from the posting and the decision (its tier and moment), and
  a posting corrected to a tier is not corrected to it again; the decision applied twice, or
  its record sent again, corrects nothing more.
- An upgrade in order (effective at or after every posting priced, the usual case) reads no fee
  back: ``pricing_customers.priced_through`` says so.

The order of the rules
----------------------
Base fee (fixed, or a percentage held between its minimum and maximum) -> the tier's benefits in
their configured order (waivers, free uses, discounts) -> the contribution discount on what is
left -> points on what is left. Free uses are counted per fee and calendar month in
Asia/Shanghai (by ``posted_at``) against the free uses already given that month. Every posting
gets a fee event, a zero one naming the rule that made it zero (``no_fee``,
``unknown_tx_type``, a waiver...).

Points
------
Earned by one leg of a purchase or placement (the current account's debit of a wealth or
fund purchase; the time deposit's own credit of a placement, the one leg a placement in cash
has) and by debit-card spending (``pricing.points.earn``), available from the next posting on. Spent oldest first, on the fees of
customers who opted in (``auto_points_offset``), or on request: ``POST
/v1/customers/{id}/points/redeem`` sets points aside for the customer's next fees. An assessed fee
has gone to core banking for collection and is never reopened, so a redemption works forward.
Points earned in calendar year Y expire at the end of Y+1 (``expiry_calendar_years: 2``): the
daily ``POST /v1/pricing/points-expiry`` expires them, and a posting dated after that moment
expires them first itself, so the result never depends on when the job ran.

Exactly once
------------
The runtime drops an event id it has processed. Tiering derives the tiered posting's id from the
``posting_id``, so a posting sent twice by core banking under two ``ce_id`` reaches pricing as
one event; ``pricing_fees.posting_id`` is unique and checked first besides, so a posting is never
priced twice. The fee, the month's free-use counter, the points ledger and the
``strata.fee_assessed.v1`` (id derived from the ``posting_id``) are written in one transaction,
committed before the offset: a restart between the two redelivers events that are then skipped.
"""

from __future__ import annotations

import logging

from shared.runtime.service import ServiceSpec

log = logging.getLogger(__name__)


async def _check_settings(runtime) -> None:
    """Say at start-up if the pricing settings name tiers the bank does not have."""
    from services.pricing.rules import unknown_tier_ids

    unknown = unknown_tier_ids(runtime.settings)
    if unknown:
        log.error("pricing settings name unknown tiers; their benefits and products never apply",
                  extra={"tiers": sorted(unknown)})


def spec() -> ServiceSpec:
    from services.pricing.messaging import EMITS, SUBSCRIPTIONS
    from services.pricing.state import PricingState
    from services.pricing.views import router

    return ServiceSpec("pricing", SUBSCRIPTIONS, (router,), EMITS, (_check_settings,), state=PricingState)
