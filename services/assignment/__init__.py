"""Assignment: every customer above mass with a named primary and backup RM (责任到人), by tier
correspondence, familiarity claims and balanced distribution; the RM registry, handovers,
worklists, follow-ups and the audit trail of every change."""

from __future__ import annotations

import asyncio

from shared.runtime.service import ServiceSpec


async def _assignment_gauges(runtime) -> None:
    from services.assignment.service import refresh_gauges

    while True:
        try:
            async with runtime.db.sessions() as session:
                await refresh_gauges(session, runtime.settings)
        except Exception:
            pass  # database down: readiness reports it; gauges keep their last value
        await asyncio.sleep(runtime.settings.runtime.business_gauges_interval_s)


def spec() -> ServiceSpec:
    from services.assignment.messaging import EMITS, SUBSCRIPTIONS
    from services.assignment.service import prefetch
    from services.assignment.views import router

    # Assignment decides who serves whom, so it checks access against its own assignments (always
    # current) rather than keeping a projection of its own events.
    return ServiceSpec("assignment", SUBSCRIPTIONS, (router,), EMITS, (_assignment_gauges,),
                       prefetch=prefetch, keeps_access=False)
