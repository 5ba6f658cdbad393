"""Assignment: every customer above mass with a named primary and backup RM (责任到人), by tier
correspondence, familiarity claims and balanced distribution; the RM registry, handovers,
worklists, follow-ups and the audit trail of every change."""

from __future__ import annotations

from shared.runtime.service import ServiceSpec, business_gauges


def spec() -> ServiceSpec:
    from services.assignment.messaging import EMITS, SUBSCRIPTIONS
    from services.assignment.service import prefetch, refresh_gauges
    from services.assignment.views import router

    # Assignment decides who serves whom, so it checks access against its own assignments (always
    # current) rather than keeping a projection of its own events.
    return ServiceSpec("assignment", SUBSCRIPTIONS, (router,), EMITS, (business_gauges(refresh_gauges),),
                       prefetch=prefetch, keeps_access=False)
