"""Alerts: opportunity and risk signals (商机挖掘) that reach the customer's RM once, from
tiering's changes, the account, customer and assignment streams and a daily date-based scan.

Kafka orders a customer's events within one topic, never across topics. So alerts reads
everything tiering tells it (postings with the tier and AUM after them, tier decisions, AUM)
from one internal topic, ``strata.tiering.changes``, in the order tiering made them: the rules judge
each customer's events in that one order, and the same events raise the same signals however
they were batched, redelivered or read after a restart.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.runtime.service import ServiceSpec, business_gauges


async def _open_backlog(session, settings) -> None:
    """Keep the open-signals gauge (the RMs' backlog by type) current."""
    from services.alerts import metrics
    from services.alerts.domain import OPEN, SIGNAL_TYPES
    from services.alerts.models import AlertsSignal

    rows = dict((await session.execute(
        select(AlertsSignal.signal_type, func.count())
        .where(AlertsSignal.status == OPEN).group_by(AlertsSignal.signal_type)
    )).all())
    for signal_type in SIGNAL_TYPES:
        metrics.SIGNALS_OPEN.labels(signal_type).set(rows.get(signal_type, 0))


def spec() -> ServiceSpec:
    from services.alerts.messaging import EMITS, SUBSCRIPTIONS
    from services.alerts.state import AlertsState
    from services.alerts.views import router

    return ServiceSpec("alerts", SUBSCRIPTIONS, (router,), EMITS, (business_gauges(_open_backlog),),
                       state=AlertsState)
