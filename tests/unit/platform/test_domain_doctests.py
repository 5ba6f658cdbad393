"""The examples in the bank rules' docstrings are true: each domain module's doctests run."""

from __future__ import annotations

import doctest
import importlib

import pytest

from shared.settings import Settings

MODULES = [
    "services.tiering.domain", "services.tiering.replay", "services.pricing.domain", "services.alerts.domain",
    "services.profile.domain", "shared.calendar", "shared.tiers", "shared.money", "shared.banks",
]


def pricing_examples() -> dict:
    """What the pricing examples name: the default settings' engine, fees, benefits, products."""
    from services.pricing.domain import PricingEngine
    from shared.contracts.types import KNOWN_TX_TYPES

    settings = Settings()
    pricing = settings.pricing
    engine = PricingEngine(pricing, KNOWN_TX_TYPES)
    fees = {f.id: f for f in pricing.fees}
    return {"settings": settings, "KNOWN_TX_TYPES": KNOWN_TX_TYPES, "engine": engine, "schedule": engine.schedule,
            "cross_region": fees["atm_cross_region"],
            "gold_free3": next(b for b in pricing.benefits["gold"] if b.kind == "free_uses"),
            "hot": next(p for p in pricing.products if p.code == "WM-HOT-365"),
            "ranks": {t.id: i for i, t in enumerate(settings.tiers)}}


EXAMPLES = {"services.pricing.domain": pricing_examples}


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_the_rules_hold(name):
    module = importlib.import_module(name)
    names = EXAMPLES[name]() if name in EXAMPLES else {}
    result = doctest.testmod(module, extraglobs=names, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail"
