"""The examples in the bank rules' docstrings are true: each domain module's doctests run."""

from __future__ import annotations

import doctest
import importlib

import pytest

from shared.settings import Settings

MODULES = [
    "services.tiering.domain", "services.tiering.replay", "services.pricing.domain", "services.alerts.domain",
    "services.profile.domain", "services.assignment.domain", "services.profile.filters", "shared.calendar", "shared.tiers", "shared.money", "shared.banks",
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


def assignment_examples() -> dict:
    """What the assignment examples name: the default rules, and RMs of branch BR-1 (level L1
    unless named, a gold book of ``book`` customers) in a ``pool`` of an L1 and an L2."""
    from services.assignment.domain import AssignmentRules, Book, Capacity, Pool, Rm

    settings = Settings()

    def rm(rm_id: str, *, book: int = 0, level: str = "L1") -> Rm:
        return Rm(rm_id, "BR-1", level, Capacity(weighted=400), book=Book({"gold": book} if book else {}, book))

    return {"settings": settings, "rules": AssignmentRules.from_settings(settings), "rm": rm,
            "pool": Pool([rm("A"), rm("B", level="L2")])}


def filter_examples() -> dict:
    """What the segment-filter examples name: the default settings' vocabulary."""
    from services.profile.segments import vocabulary_of

    return {"vocab": vocabulary_of(Settings())}


EXAMPLES = {"services.pricing.domain": pricing_examples, "services.assignment.domain": assignment_examples,
            "services.profile.filters": filter_examples}


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_the_rules_hold(name):
    module = importlib.import_module(name)
    names = EXAMPLES[name]() if name in EXAMPLES else {}
    result = doctest.testmod(module, extraglobs=names, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted, f"{name} has no examples to run"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail"
