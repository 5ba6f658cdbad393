"""Tiering: each customer's AUM and tier, fast up and slow down, with the month's average
daily AUM kept as events arrive."""

from __future__ import annotations

from sqlalchemy import Float, case, cast, func, select

from shared.runtime.service import ServiceSpec, business_gauges


async def _tier_gauges(session, settings) -> None:
    from services.tiering import metrics
    from services.tiering.models import TieringCustomer

    # summed as floats (a gauge is one anyway): an exact sum of cents can overflow SQLite's
    # 64-bit SUM, which would leave the gauges frozen at their last values
    rows = await session.execute(
        select(TieringCustomer.tier, func.count(), func.sum(cast(TieringCustomer.aum, Float)),
               func.sum(case((TieringCustomer.watch, 1), else_=0)))
        .group_by(TieringCustomer.tier)
    )
    watch_total = 0
    for tier, count, aum, watch in rows:
        metrics.CUSTOMERS_BY_TIER.labels(tier).set(count)
        metrics.AUM_BY_TIER.labels(tier).set((aum or 0) / 100)
        watch_total += int(watch or 0)
    metrics.WATCH_CUSTOMERS.set(watch_total)


def spec() -> ServiceSpec:
    from services.tiering.messaging import EMITS, ORDERED, SUBSCRIPTIONS
    from services.tiering.state import TieringState
    from services.tiering.views import router

    return ServiceSpec("tiering", SUBSCRIPTIONS, (router,), EMITS, (business_gauges(_tier_gauges),),
                       state=TieringState, ordered=ORDERED)
