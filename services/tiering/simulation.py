"""A tier-policy simulation's rules and answer, as plain values: the candidate policy (today's
tier table with the floors, downgrade months and household aggregation an analyst changes,
refused when it is not a policy), the figures gathered customer by customer as the replay goes
(migration between the two policies, customers, AUM, watch and downgrades per tier and month,
the RMs the books need), and the answer as CSV.

Nothing here touches a database; the job that streams the customers through it is
:mod:`services.tiering.simulation_job`.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from pydantic import ValidationError

from shared.money import ZERO
from shared.settings.tiers import TierRule, check_tier_order
from shared.tiers import TierLadder
from services.tiering.domain import TierPolicy
from services.tiering.replay import Close, MonthOutcome

SIDES = ("today", "candidate")
MAX_MONTHS = 24


class PolicyRefused(ValueError):
    """A candidate that is not a valid tier policy; the message names the rule it breaks."""


@dataclass(frozen=True)
class SimulatedPolicy:
    """A tier policy as a simulation replays it: the tier table and household aggregation."""

    rules: tuple[TierRule, ...]
    household_aggregation: bool

    @property
    def policy(self) -> TierPolicy:
        return TierPolicy(TierLadder.from_rules(self.rules))

    def as_dict(self) -> dict:
        return {"tiers": [{"id": r.id, "floor": format(r.floor, "f"),
                           "downgrade_after_months": r.downgrade_after_months} for r in self.rules],
                "household_aggregation": self.household_aggregation}


def todays_policy(settings) -> SimulatedPolicy:
    return SimulatedPolicy(tuple(settings.tiers), settings.tiering.household_aggregation)


def candidate_policy(settings, tiers: Sequence[Mapping], household_aggregation: bool | None) -> SimulatedPolicy:
    """Today's tier table with the changes given (``{"id", "floor"?, "downgrade_after_months"?}``
    per tier), checked as the settings check a tier table.

    >>> from shared.settings import get_settings
    >>> candidate_policy(get_settings(), [{"id": "gold", "floor": "250000.00"}], None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    services.tiering.simulation.PolicyRefused: floors must increase from the lowest tier up: ...
    """
    live = {t.id: t for t in settings.tiers}
    unknown = [str(t.get("id")) for t in tiers if t.get("id") not in live]
    if unknown:
        raise PolicyRefused(f"unknown tier {', '.join(unknown)}: the tiers are {', '.join(live)}")
    named = Counter(t["id"] for t in tiers)
    twice = sorted(t for t, n in named.items() if n > 1)
    if twice:
        raise PolicyRefused(f"tier {', '.join(twice)} is given more than once")
    changes = {t["id"]: {k: v for k, v in t.items() if k in ("floor", "downgrade_after_months") and v is not None}
               for t in tiers}
    rules = []
    for tier in settings.tiers:
        try:
            rules.append(TierRule.model_validate({**tier.model_dump(), **changes.get(tier.id, {})}))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise PolicyRefused(f"tier {tier.id}: {where} {error['msg'].lower()}") from exc
    try:
        check_tier_order(rules)
    except ValueError as exc:
        raise PolicyRefused(_order_broken(rules, str(exc))) from exc
    aggregate = settings.tiering.household_aggregation if household_aggregation is None else household_aggregation
    return SimulatedPolicy(tuple(rules), aggregate)


def _order_broken(rules: Sequence[TierRule], rule: str) -> str:
    """The settings' rule, with the tiers that break it named."""
    if rules and rules[0].floor != 0:
        return f"{rule} (the lowest tier {rules[0].id} has floor {rules[0].floor})"
    for below, above in zip(rules, rules[1:]):
        if above.floor <= below.floor:
            return (f"floors must increase from the lowest tier up: {rule} ({above.id}'s floor "
                    f"{above.floor} is not above {below.id}'s {below.floor})")
    return rule


# --- the figures ---------------------------------------------------------------------------


@dataclass
class MonthFigures:
    """One month under one policy, as its close left the customers."""

    customers: int = 0
    by_tier: Counter = field(default_factory=Counter)
    aum_by_tier: dict[str, Decimal] = field(default_factory=dict)
    watch: int = 0
    watch_cleared: int = 0
    downgrades: int = 0
    upgraded: int = 0
    placed: int = 0

    def add(self, outcome: MonthOutcome, month_end_aum: Decimal) -> None:
        tier = outcome.state.tier
        self.customers += 1
        self.by_tier[tier] += 1
        self.aum_by_tier[tier] = self.aum_by_tier.get(tier, ZERO) + month_end_aum
        self.watch += outcome.change == "watch"
        self.watch_cleared += outcome.change == "watch_cleared"
        self.downgrades += outcome.change == "downgrade"
        self.upgraded += outcome.upgraded
        self.placed += outcome.placed

    def as_dict(self, tiers: Sequence[str]) -> dict:
        return {"customers": self.customers, "watch": self.watch, "watch_cleared": self.watch_cleared,
                "downgrades": self.downgrades, "upgraded": self.upgraded, "placed": self.placed,
                "by_tier": {t: {"customers": self.by_tier.get(t, 0), "aum": self.aum_by_tier.get(t, ZERO)}
                            for t in tiers}}


class Figures:
    """Everything the answer counts, gathered one customer at a time (memory: per month and
    tier, never per customer)."""

    def __init__(self, closes: Sequence[Close], tiers: Sequence[str]) -> None:
        self.closes = list(closes)
        self.tiers = list(tiers)
        self.months = {side: [MonthFigures() for _ in closes] for side in SIDES}
        self.migration = [Counter() for _ in closes]
        self.customers = 0

    def add(self, today: list[MonthOutcome | None], candidate: list[MonthOutcome | None],
            stretches: Sequence) -> None:
        """One customer's months under both policies (``stretches``: their path's, for the AUM)."""
        counted = False
        months_today, months_candidate = self.months["today"], self.months["candidate"]
        for k, (a, b) in enumerate(zip(today, candidate)):
            if a is not None:
                months_today[k].add(a, stretches[k].month_end_aum)
            if b is not None:
                months_candidate[k].add(b, stretches[k].month_end_aum)
            if a is not None and b is not None:
                self.migration[k][(a.state.tier, b.state.tier)] += 1
                counted = True
        self.customers += counted

    def matrix(self, k: int) -> dict[str, dict[str, int]]:
        """Today's tier -> the candidate's tier -> customers, at the close of month ``k``."""
        return {a: {b: self.migration[k].get((a, b), 0) for b in self.tiers} for a in self.tiers}

    def by_tier_at_end(self, side: str) -> dict[str, int]:
        last = self.months[side][-1]
        return {t: last.by_tier.get(t, 0) for t in self.tiers}

    def as_dict(self) -> dict:
        return {
            "customers": self.customers,
            "migration": {"end": self.matrix(len(self.closes) - 1),
                          "by_month": {c.month: self.matrix(k) for k, c in enumerate(self.closes)}},
            "months": [{"month": c.month, **{side: self.months[side][k].as_dict(self.tiers) for side in SIDES}}
                       for k, c in enumerate(self.closes)],
        }


def rms_needed(rules, by_tier: Mapping[str, int]) -> dict[str, dict]:
    """The primary RMs each level needs to carry books of these customers: the tier's most
    preferred level carries its customers, at their book weight, up to the level's default
    capacity (``settings.assignment``). Tiers served by the branch pool need none.

    >>> from shared.settings import get_settings
    >>> from services.assignment.domain import AssignmentRules
    >>> rms_needed(AssignmentRules.from_settings(get_settings()), {"mass": 900, "gold": 801})["L1"]
    {'customers': 801, 'weighted_book': 801, 'capacity': 400, 'rms': 3}
    """
    levels: dict[str, dict[str, int]] = {}
    for tier, count in by_tier.items():
        if not count or not rules.knows(tier) or not rules.needs_rm(tier):
            continue
        levels.setdefault(rules.levels_for(tier)[0], {})[tier] = count
    out = {}
    for level, counts in sorted(levels.items()):
        book = rules.book(counts)
        capacity = rules.default_capacity(level).weighted or 0
        out[level] = {"customers": book.customers, "weighted_book": book.weight, "capacity": capacity,
                      "rms": math.ceil(book.weight / capacity) if capacity else None}
    return out


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "month", "policy", "tier", "to_tier", "measure", "value")


def answer_csv(result: dict) -> str:
    """The answer as one long table: a row per figure (section, month, policy, tier, the
    candidate's tier for the migration, measure, value), ready for a spreadsheet's pivot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_rows(result))
    return out.getvalue()


def _csv_rows(result: dict) -> Iterable[tuple]:
    for item in result["history"]["months"]:
        yield ("history", item["month"], "", "", "", "days_with_history", item["days_with_history"])
        yield ("history", item["month"], "", "", "", "closed_through", item["closed_through"])
    for month, matrix in [("end", result["migration"]["end"]), *result["migration"]["by_month"].items()]:
        for a, row in matrix.items():
            for b, n in row.items():
                yield ("migration", month, "", a, b, "customers", n)
    for item in result["months"]:
        for side in SIDES:
            figures = item[side]
            for measure in ("customers", "watch", "watch_cleared", "downgrades", "upgraded", "placed"):
                yield ("month", item["month"], side, "", "", measure, figures[measure])
            for tier, cell in figures["by_tier"].items():
                yield ("month", item["month"], side, tier, "", "customers", cell["customers"])
                yield ("month", item["month"], side, tier, "", "aum", cell["aum"])
    for side in SIDES:
        for level, cell in result["rms_needed"][side].items():
            for measure in ("customers", "weighted_book", "capacity", "rms"):
                yield ("rms_needed", "end", side, level, "", measure, cell[measure])
    fees = result["fees"]
    if fees.get("available"):
        for item in fees["by_tier"]:
            for side in SIDES:
                for measure, value in item[side].items():
                    yield ("fees", "period", side, item["tier"], "", measure, value)
        for side in (*SIDES, "as_charged"):
            for measure, value in fees["totals"][side].items():
                yield ("fees", "period", side, "", "", measure, value)
    else:
        yield ("fees", "period", "", "", "", "unavailable", fees.get("reason", ""))
