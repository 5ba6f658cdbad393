"""Profile: the customer base (master data from core banking and other sources), the customer
360 read model kept from every Strata topic, segment templates and branch reports."""

from __future__ import annotations

from shared.runtime.service import ServiceSpec


def spec() -> ServiceSpec:
    from services.profile.messaging import EMITS, SUBSCRIPTIONS
    from services.profile.state import ProfileState
    from services.profile.views import router

    return ServiceSpec("profile", SUBSCRIPTIONS, (router,), EMITS, state=ProfileState)
