"""The synthetic bank: its branches and RMs, and its customers with households, identities and
the accounts they open with.

Every customer is drawn from its own seeded generator, so customer ``i`` is the same whatever
the size of the bank, and the population is produced one customer at a time (a million
customers never sit in memory together).

Wealth follows a real bank's mix (one commercial bank's figures): most customers hold under
50,000; the 50,000–1,000,000 band is about 9 % of customers and most of the assets; a thin tail
holds 6,000,000 or more. The band a customer falls in is chosen by a low-discrepancy sequence,
so even a small bank has the mix's proportions.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterator

from shared.contracts.events import AccountV1, CustomerV1
from shared.settings import Settings
from shared.money import to_cents as exact_cents  # configured amounts, Decimal to cents
from strata.simulator.catalogue import (
    BRANCHES,
    GIVEN,
    MOBILE_PREFIXES,
    PRODUCT_INDEX,
    PRODUCTS,
    RISK_LEVELS,
    RISK_WEIGHTS,
    SURNAMES,
    TAGS,
    TERM_CODES,
    Branch,
    id_check_digit,
)

GOLDEN = (math.sqrt(5) - 1) / 2

WEALTH_MIX: tuple[tuple[float, int, int, float | None], ...] = (
    # (share of customers, lowest, highest in CNY, Pareto tail index or None for log-uniform),
    # from the top down; the rest are mass customers.
    (0.0003, 6_000_000, 20_000_000, 3.0),
    (0.0016, 1_000_000, 6_000_000, 1.3),
    (0.0275, 200_000, 1_000_000, None),
    (0.0625, 50_000, 200_000, None),
)
MASS_MEDIAN = 1_800
MASS_SIGMA = 1.45
MASS_CEILING = 50_000

# Holdings by wealth level (0 mass, 1 under 200,000, 2 under 1,000,000, 3 above): the chance of
# holding each product, and the share of assets left in the demand deposit.
HOLDING_ODDS = {
    "time_deposit": (0.20, 0.55, 0.65, 0.75),
    "wealth_product": (0.05, 0.45, 0.60, 0.70),
    "fund": (0.07, 0.40, 0.55, 0.70),
    "insurance": (0.04, 0.20, 0.35, 0.50),
    "precious_metal": (0.02, 0.10, 0.20, 0.30),
}
DEMAND_SHARE = ((0.70, 1.00), (0.15, 0.40), (0.12, 0.30), (0.10, 0.25))
LEAP_BIRTHDAY_ODDS = 1 / 150

FLAG_SMS = 1
FLAG_OTHER_ATM = 2
FLAG_TRAVELLER = 4
FLAG_INVESTOR = 8


def mix_seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (Python's ``hash`` of a string changes per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def to_cents(amount: float) -> int:
    return int(round(amount * 100))


@dataclass(frozen=True)
class Rm:
    rm_id: str
    name: str
    branch_id: str
    level: str
    capacity: int

    def as_json(self) -> dict:
        return {"rm_id": self.rm_id, "name": self.name, "branch_id": self.branch_id,
                "level": self.level, "capacity": self.capacity, "active": True}


@dataclass
class AccountPlan:
    slot: int
    product: int
    """Index into :data:`PRODUCTS`."""
    branch: int
    opened_on: date
    balance: int
    """Opening balance in cents (what the customer owes, for loans and credit cards)."""
    due: date | None = None
    """Maturity date, or card expiry for accounts with a card."""
    open: bool = True
    """False for a slot kept for a later placement, not yet opened."""


@dataclass
class CustomerPlan:
    index: int
    customer_id: str
    branch: int
    wealth: int
    """The assets the customer starts with, in cents."""
    income: int
    """Monthly salary in cents (0: no salary paid here)."""
    payday: int
    spend: int
    """Monthly spending in cents."""
    flags: int
    risk_level: str
    master: CustomerV1
    accounts: list[AccountPlan] = field(default_factory=list)


class SyntheticBank:
    """The bank of one seed: branches, RMs and a population of ``customers`` customers."""

    def __init__(self, seed: int, customers: int, start: date, settings: Settings) -> None:
        self.seed = seed
        self.customers = customers
        self.start = start
        self.settings = settings
        self.zone = settings.zone
        self.branches: tuple[Branch, ...] = BRANCHES
        self.branch_index = {b.branch_id: i for i, b in enumerate(self.branches)}
        self._offset = random.Random(mix_seed(seed, "bands")).random()
        self._branch_weights = [b.weight for b in self.branches]

    # --- identifiers ------------------------------------------------------------------------

    @staticmethod
    def customer_id(index: int) -> str:
        return f"C{index:07d}"

    @staticmethod
    def account_id(index: int, slot: int, generation: int = 1) -> str:
        base = f"A{index:07d}{slot:02d}"
        return base if generation <= 1 else f"{base}R{generation}"

    def at(self, day: date, seconds: int = 0) -> datetime:
        return datetime.combine(day, time(0), self.zone) + timedelta(seconds=seconds)

    # --- RMs --------------------------------------------------------------------------------

    def rms(self) -> list[Rm]:
        """RMs of every level at every branch, enough for their share of the book, and the
        service centres' RMs for the tiers ``settings.assignment.centres`` sends there."""
        cfg = self.settings.assignment
        rng = random.Random(mix_seed(self.seed, "rms"))
        shares = self.tier_shares()
        centred = dict(cfg.centres)
        branch_total = sum(self._branch_weights)
        wanted: dict[tuple[str, str], float] = {}
        for tier, share in shares.items():
            levels = cfg.primary_levels.get(tier)
            if not levels:
                continue
            load = share * self.customers * cfg.weights.get(tier, 1)
            if tier in centred:
                key = (centred[tier], levels[0])
                wanted[key] = wanted.get(key, 0) + load
                continue
            for b in self.branches:
                key = (b.branch_id, levels[0])
                wanted[key] = wanted.get(key, 0) + load * b.weight / branch_total
        rms = []
        places = [b.branch_id for b in self.branches]
        places += sorted(set(centred.values()) - set(places))
        for place in places:
            levels = cfg.levels if place in self.branch_index else sorted(
                {lvl for (p, lvl) in wanted if p == place})
            for level in levels:
                # Half the capacity: room for growth, and a backup book on top of the primary one.
                count = max(1, math.ceil(wanted.get((place, level), 0) / (cfg.default_capacity * 0.5)))
                for n in range(1, count + 1):
                    rms.append(Rm(f"RM-{place.removeprefix('BR-')}-{level}-{n:02d}", _name(rng),
                                  place, level, cfg.default_capacity))
        return rms

    def tier_shares(self, sample: int = 4000) -> dict[str, float]:
        """The expected share of customers in each tier, from a sample of the wealth mix."""
        rng = random.Random(mix_seed(self.seed, "tier-shares"))
        floors = [(t.id, exact_cents(t.floor)) for t in self.settings.tiers]
        counts = {t: 0 for t, _ in floors}
        for i in range(sample):
            wealth = to_cents(draw_wealth(rng, (i * GOLDEN) % 1.0))
            tier = floors[0][0]
            for tid, floor in floors:
                if wealth >= floor:
                    tier = tid
            counts[tier] += 1
        return {t: c / sample for t, c in counts.items()}

    # --- customers --------------------------------------------------------------------------

    def population(self) -> Iterator[CustomerPlan]:
        """Every customer in index order, households formed from neighbours."""
        plan_rng = random.Random(mix_seed(self.seed, "households"))
        index = 0
        while index < self.customers:
            size = plan_rng.choices((1, 2, 3, 4), (62, 22, 11, 5))[0]
            size = min(size, self.customers - index)
            head: CustomerPlan | None = None
            for member in range(size):
                plan = self.customer(index, head, member, size)
                head = head or plan
                yield plan
                index += 1

    def customer(self, index: int, head: CustomerPlan | None = None, member: int = 0,
                 size: int = 1) -> CustomerPlan:
        rng = random.Random(mix_seed(self.seed, "customer", index))
        if head is None:
            branch = rng.choices(range(len(self.branches)), self._branch_weights)[0]
        else:
            branch = head.branch if rng.random() < 0.9 else rng.randrange(len(self.branches))
        role = _household_role(member, size, rng)
        surname = head.master.name[0] if head is not None and role in ("child",) else rng.choice(SURNAMES)
        gender = _gender(rng, role, head)
        birth = self._birth_date(rng, role, head)
        wealth = to_cents(draw_wealth(rng, (self._offset + index * GOLDEN) % 1.0))
        level = _wealth_level(wealth)
        risk = rng.choices(RISK_LEVELS, RISK_WEIGHTS)[0]
        income = self._income(rng, wealth, birth)
        flags = (FLAG_SMS * (rng.random() < 0.6) | FLAG_OTHER_ATM * (rng.random() < 0.35)
                 | FLAG_TRAVELLER * (rng.random() < 0.15)
                 | FLAG_INVESTOR * ((level >= 1 and risk != "C1") or (wealth > 2_000_000 and rng.random() < 0.3)))
        spend = int(income * rng.uniform(0.75, 0.98)) if income else int(min(wealth * 0.01, 300_000))
        household_id = f"H{(head.index if head else index):07d}" if size > 1 else None
        master = CustomerV1(
            customer_id=self.customer_id(index),
            name=surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))),
            id_number=self._id_number(rng, branch, birth, gender),
            phone=rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}",
            birth_date=birth,
            gender=gender,
            home_branch_id=self.branches[branch].branch_id,
            household_id=household_id,
            household_role=role if household_id else None,
            risk_level=risk,
            tags=sorted(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3)))),
            auto_points_offset=rng.random() < 0.3,
            source="core",
            updated_at=self.at(self.start),
        )
        plan = CustomerPlan(index, master.customer_id, branch, wealth, income,
                            rng.choice((10, 10, 15, 15, 25)), spend, flags, risk, master)
        plan.accounts = self._accounts(rng, plan, level)
        return plan

    def _birth_date(self, rng: random.Random, role: str, head: CustomerPlan | None) -> date:
        if head is not None and role == "child":
            year = head.master.birth_date.year + rng.randint(22, 36)
        elif head is not None and role == "parent":
            year = head.master.birth_date.year - rng.randint(22, 34)
        elif head is not None:
            year = head.master.birth_date.year + rng.randint(-5, 5)
        else:
            year = self.start.year - rng.randint(22, 80)
        year = min(year, self.start.year - 6)
        if rng.random() < LEAP_BIRTHDAY_ODDS:
            while not _leap(year):
                year -= 1
            return date(year, 2, 29)
        return date(year, 1, 1) + timedelta(days=rng.randrange(365))

    def _id_number(self, rng: random.Random, branch: int, birth: date, gender: str) -> str:
        sequence = rng.randrange(500) * 2 + (1 if gender == "M" else 0)
        first17 = f"{self.branches[branch].area_code}{birth:%Y%m%d}{sequence:03d}"
        return first17 + id_check_digit(first17)

    def _income(self, rng: random.Random, wealth: int, birth: date) -> int:
        age = self.start.year - birth.year
        if age < 20 or rng.random() < 0.18:
            return 0
        base = rng.lognormvariate(math.log(6_000), 0.45)
        if age >= 62:
            base *= 0.6  # a pension
        return to_cents(round(base * (1 + wealth / 100 / 800_000), -1))

    def _accounts(self, rng: random.Random, plan: CustomerPlan, level: int) -> list[AccountPlan]:
        start = self.start
        home = plan.branch
        slots: list[AccountPlan] = []

        def branch_of() -> int:
            return home if rng.random() < 0.9 else rng.randrange(len(self.branches))

        demand = AccountPlan(0, PRODUCT_INDEX["DD-SAVINGS"], home,
                             start - timedelta(days=rng.randint(30, 5000)), 0,
                             start + timedelta(days=rng.randint(1, 5 * 365)))
        slots.append(demand)
        holdings: list[AccountPlan] = []
        if plan.wealth >= 500_000:  # 5,000 CNY: below that everything stays on demand
            for ptype, odds in HOLDING_ODDS.items():
                if rng.random() < odds[level]:
                    holdings.append(self._holding(rng, ptype, plan.risk_level, branch_of()))
            if plan.wealth >= 30_000_000 and rng.random() < 0.5:
                holdings.append(self._holding(rng, "time_deposit", plan.risk_level, branch_of()))
            holdings = [h for h in holdings if h is not None]
        low, high = DEMAND_SHARE[level]
        invested = plan.wealth - int(plan.wealth * rng.uniform(low, high)) if holdings else 0
        weights = [rng.uniform(0.5, 1.5) for _ in holdings]
        total_weight = sum(weights) or 1
        placed = 0
        for holding, weight in zip(holdings, weights):
            holding.balance = int(invested * weight / total_weight)
            placed += holding.balance
        demand.balance = plan.wealth - placed
        slots += holdings
        if not any(PRODUCTS[a.product].product_type == "time_deposit" for a in holdings):
            slots.append(AccountPlan(0, PRODUCT_INDEX["TD-1Y"], home, start, 0, None, open=False))
        if plan.flags & FLAG_INVESTOR and not any(
                PRODUCTS[a.product].product_type == "wealth_product" for a in holdings):
            slots.append(AccountPlan(0, PRODUCT_INDEX["WM-STEADY-90"], home, start, 0, None, open=False))
        if rng.random() < 0.15:
            mortgage = rng.random() < 0.6
            code = "LN-MORTGAGE" if mortgage else "LN-CONSUMER"
            owed = rng.uniform(200_000, 1_500_000) if mortgage else rng.uniform(20_000, 200_000)
            slots.append(AccountPlan(0, PRODUCT_INDEX[code], branch_of(),
                                     start - timedelta(days=rng.randint(60, 3000)), to_cents(round(owed, -2))))
        if rng.random() < 0.35 + 0.2 * level:
            code = "CC-PLATINUM" if level >= 2 else "CC-STANDARD"
            slots.append(AccountPlan(0, PRODUCT_INDEX[code], home,
                                     start - timedelta(days=rng.randint(30, 3000)),
                                     to_cents(rng.choice((0, 0, rng.uniform(100, 15_000)))),
                                     start + timedelta(days=rng.randint(1, 5 * 365))))
        for slot, account in enumerate(slots):
            account.slot = slot
        return slots

    def _holding(self, rng: random.Random, ptype: str, risk: str, branch: int) -> AccountPlan | None:
        """A product the customer already holds, if one of that type suits their risk level."""
        if ptype in TERM_CODES:
            codes = [c for c in TERM_CODES[ptype] if PRODUCTS[PRODUCT_INDEX[c]].min_risk <= risk]
            if not codes:
                return None
            code = rng.choice(codes)
            term = PRODUCTS[PRODUCT_INDEX[code]].term_days
            opened = self.start - timedelta(days=rng.randint(1, term - 1))
            return AccountPlan(0, PRODUCT_INDEX[code], branch, opened, 0, opened + timedelta(days=term))
        codes = [p.code for p in PRODUCTS if p.product_type == ptype and p.min_risk <= risk]
        if not codes:
            return None
        code = rng.choice(codes)
        return AccountPlan(0, PRODUCT_INDEX[code], branch, self.start - timedelta(days=rng.randint(30, 2000)), 0)

    # --- master data ------------------------------------------------------------------------

    def account_event(self, plan_index: int, account: AccountPlan, *, generation: int = 1,
                      status: str = "open", product: int | None = None, opened_on: date | None = None,
                      due: date | None = None, branch: int | None = None) -> AccountV1:
        kind = PRODUCTS[account.product if product is None else product]
        due = account.due if due is None else due
        matures = kind.term_days > 0
        return AccountV1(
            account_id=self.account_id(plan_index, account.slot, generation),
            customer_id=self.customer_id(plan_index),
            branch_id=self.branches[account.branch if branch is None else branch].branch_id,
            product_type=kind.product_type,
            product_code=kind.code,
            status=status,
            opened_on=opened_on or account.opened_on,
            maturity_date=due if matures else None,
            card_expiry=due if not matures else None,
        )


def draw_wealth(rng: random.Random, u: float) -> float:
    """A customer's assets in CNY: the band from ``u`` (uniform in [0, 1)), the amount within it
    from ``rng``."""
    edge = 0.0
    for share, low, high, alpha in WEALTH_MIX:
        if u < edge + share:
            if alpha is None:
                return math.exp(rng.uniform(math.log(low), math.log(high)))
            # a Pareto tail cut at ``high``: few customers far above the band's floor
            cut = 1 - (low / high) ** alpha
            return low / (1 - rng.random() * cut) ** (1 / alpha)
        edge += share
    while True:
        amount = rng.lognormvariate(math.log(MASS_MEDIAN), MASS_SIGMA)
        if amount < MASS_CEILING:
            return round(amount, 2)


def _wealth_level(cents: int) -> int:
    cny = cents / 100
    return 0 if cny < 50_000 else 1 if cny < 200_000 else 2 if cny < 1_000_000 else 3


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _household_role(member: int, size: int, rng: random.Random) -> str:
    if member == 0:
        return "head"
    if member == 1:
        return rng.choice(("spouse", "spouse", "spouse", "child", "parent"))
    return rng.choice(("child", "child", "parent", "member"))


def _gender(rng: random.Random, role: str, head: CustomerPlan | None) -> str:
    if role == "spouse" and head is not None and head.master.gender in ("F", "M"):
        return "M" if head.master.gender == "F" else "F"
    return rng.choice(("F", "M"))


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
