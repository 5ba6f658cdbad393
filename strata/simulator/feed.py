"""The simulated core bank's feed: master data and opening balances, then one business day of
postings at a time.

A day's events are a pure function of the books at the start of the day and the seed, so a day
can be produced again after a restart, event ids and all. Within a customer, events are in time
order and every posting carries the account's next ``account_seq`` and its exact balance after.

Two legs of a move between a customer's own accounts (buying a fund, placing a time deposit, a
maturity paying out) are two postings: the customer's demand deposit carries the business
transaction type (``fund_purchase``, ``deposit_placement``, ``deposit_maturity``...), the product
account a neutral ``transfer_in`` / ``transfer_out`` on channel ``internal``, so a fee or points
rule keyed on the transaction type sees each purchase once.
"""

from __future__ import annotations

import calendar
import random
from collections import Counter
from datetime import date, timedelta
from typing import Iterator, Protocol

from shared.contracts.cloudevents import Event, new_event
from shared.contracts.events import AccountV1, BalanceV1, PostingV1
from shared.money import from_cents
from shared.settings import Settings
from shared.money import to_cents as exact_cents  # configured amounts, Decimal to cents
from strata.simulator.bank import (
    FLAG_INVESTOR,
    FLAG_OTHER_ATM,
    FLAG_SMS,
    FLAG_TRAVELLER,
    CustomerPlan,
    SyntheticBank,
    mix_seed,
    to_cents,
)
from strata.simulator.catalogue import PRODUCT_INDEX, PRODUCT_TYPES, PRODUCTS, RISK_LEVELS, TERM_CODES, TYPE_INDEX
from strata.simulator.ledger import CLOSED, OPEN, Ledger

SOURCE = "core-banking-simulator"
CURRENCY = "CNY"

DEMAND, TIME, WEALTH, FUND, INSURANCE, METAL, LOAN, CARD = (TYPE_INDEX[t] for t in PRODUCT_TYPES)
VALUED = frozenset({FUND, INSURANCE, METAL})
LIQUID = (FUND, WEALTH, METAL)

# What an average customer does on an ordinary day, at full intensity (chance per day).
DAILY_RATES = (
    ("card_spend", 0.30), ("credit_spend", 0.12), ("atm", 0.05), ("transfer_out", 0.05),
    ("transfer_in", 0.03), ("cash_deposit", 0.012), ("invest", 0.04),
)
RATES = dict(DAILY_RATES)
SPEND_SHARE = {"card_spend": 0.45, "credit_spend": 0.20, "atm": 0.15, "transfer_out": 0.20}
INFLOW_SHARE = {"transfer_in": 0.75, "cash_deposit": 0.25}
# Life events drawn once a month per customer: a windfall near a tier floor, money leaving for
# another bank for good, a large transfer out by a wealthy customer.
STORY_ODDS = (("riser", 0.25), ("drain", 0.02), ("vip_outflow", 0.03))
RISER_REACH = 0.75
"""A riser is a customer within this fraction of the next floor when their windfall comes."""
DRAIN_MONTHS = 6
SMALL_BALANCE = 30_000
"""In cents: the demand balance under which the quarterly small-account fee is charged."""
DEMAND_RATE = 0.0020
CARD_RENEWAL_DAYS = 7
PAYDAYS = (10, 15, 25)
FEE_DEFAULTS = {"sms_monthly": 200, "card_annual": 1000, "small_account": 300}


class AumObserver(Protocol):
    def on_aum(self, customer: int, aum: int, day: date) -> None: ...


class Feed:
    """The bank of one seed and its books, producing its events day by day."""

    def __init__(self, seed: int, customers: int, start: date, settings: Settings, *,
                 light_until: date | None = None, history_intensity: float = 1.0) -> None:
        self.seed = seed
        self.start = start
        self.settings = settings
        self.bank = SyntheticBank(seed, customers, start, settings)
        self.ledger = Ledger()
        for plan in self.bank.population():
            self.ledger.add_customer(plan, _installment(plan))
        self.light_until = light_until
        self.history_intensity = history_intensity
        self.floors = [exact_cents(t.floor) for t in settings.tiers]
        tier_floor = {t.id: exact_cents(t.floor) for t in settings.tiers}
        vip = settings.signals.vip_outflow
        self.vip_floor = tier_floor.get(vip.min_tier, self.floors[-1])
        self.large_outflow = exact_cents(vip.large_outflow)
        self.fees = dict(FEE_DEFAULTS)
        self.fees.update({f.id: exact_cents(f.amount) for f in settings.pricing.fees if f.kind == "fixed"})
        self.counts: Counter[str] = Counter()
        self.observer: AumObserver | None = None
        self._stories: tuple[tuple[int, int], dict[int, tuple[str, int]]] | None = None
        self._clock = 0
        self._index_dates()
        ledger = self.ledger
        self.master_total = self.customers + sum(
            (ledger.status[a] == OPEN) + (ledger.status[a] == OPEN and ledger.balance[a] > 0)
            for a in range(len(ledger.owner)))
        """How many events :meth:`master_events` yields."""

    @property
    def customers(self) -> int:
        return self.ledger.customers

    # --- master data ------------------------------------------------------------------------

    def master_events(self) -> Iterator[Event]:
        """Every customer's record, their open accounts and the accounts' opening balances (as
        ``bank.balance.v1`` snapshots at the start of the first day)."""
        as_of = self.bank.at(self.start)
        for plan in self.bank.population():
            yield self._event(plan.master, f"customer:{plan.customer_id}:{self.start}", as_of)
            for account in plan.accounts:
                if account.open:
                    data = self.bank.account_event(plan.index, account)
                    yield self._event(data, f"account:{data.account_id}:open:{account.opened_on}", as_of)
            for account in plan.accounts:
                if account.open and account.balance:
                    data = BalanceV1(
                        customer_id=plan.customer_id,
                        account_id=self.bank.account_id(plan.index, account.slot),
                        product_type=PRODUCTS[account.product].product_type,
                        balance=from_cents(account.balance), currency=CURRENCY, as_of=as_of,
                    )
                    yield self._event(data, f"balance:{data.account_id}:{as_of.isoformat()}", as_of)
            if self.observer is not None:
                self.observer.on_aum(plan.index, self.ledger.aum[plan.index], self.start)


    # --- the day ----------------------------------------------------------------------------

    def intensity(self, day: date) -> float:
        """How busy customers are: days before ``light_until`` are history, replayed with fewer,
        larger everyday transactions (the same money moves)."""
        return self.history_intensity if self.light_until and day < self.light_until else 1.0

    def day_events(self, day: date) -> Iterator[Event]:
        """Every event of business day ``day``, customer by customer, each customer's in time
        order. Advances the books as it goes."""
        ledger = self.ledger
        rng = random.Random(mix_seed(self.seed, "day", day.toordinal()))
        stories = self._stories_of(day)
        k = self.intensity(day)
        paid_today = {p for p in PAYDAYS if _payday(day.year, day.month, p) == day}
        last_day = (day + timedelta(days=1)).day == 1
        quarter_end_month = day.month in (3, 6, 9, 12)
        maturing = _by_owner(ledger, self._maturing.pop(day.toordinal(), ()))
        renewing = _by_owner(ledger, self._renewing.pop(day.toordinal(), ()))
        for c in range(self.customers):
            intents: list[tuple] = []
            demand = ledger.first[c]
            if ledger.income[c] and ledger.payday[c] in paid_today:
                intents.append((8 * 3600 + c % 5400, "salary", None))
            if ledger.flags[c] & FLAG_SMS and day.day == 1 + c % 28:
                intents.append((2 * 3600 + c % 7200, "sms_monthly", None))
            if _anniversary(date.fromordinal(ledger.opened[demand]), day):
                intents.append((2 * 3600 + c % 7200, "card_annual", None))
            if quarter_end_month and day.day == 20 and ledger.balance[demand] < SMALL_BALANCE:
                intents.append((3 * 3600, "small_account", None))
            if quarter_end_month and day.day == 21:
                intents.append((3600, "interest", None))
            if day.day == 20 and ledger.installment[c]:
                intents.append((6 * 3600, "loan", None))
            if day.day == 8:
                intents.append((7 * 3600, "card_repay", None))
            for account in maturing.get(c, ()):
                intents.append((1800, "mature", account))
            for account in renewing.get(c, ()):
                intents.append((1800, "renew", account))
            story = stories.get(c)
            if story is not None and story[1] == day.day:
                intents.append((9 * 3600 + rng.randrange(8 * 3600), story[0], None))
            self._everyday(c, rng, k, intents)
            if last_day:
                intents.append((23 * 3600 + 1800 + c % 1800, "valuation", None))
            if not intents:
                continue
            intents.sort(key=lambda i: i[0])
            self._clock = 0
            for seconds, kind, arg in intents:
                yield from getattr(self, f"_do_{kind}")(c, day, seconds, arg, rng)

    def published_day(self, day: date) -> list[Event]:
        """The day's events in the order core banking publishes them: as they happen, in
        business time (each customer's already are; the sort is stable, so the order of one
        instant, such as the two legs of a transfer between a customer's accounts, is kept)."""
        return sorted(self.day_events(day), key=lambda e: e.time)

    def _everyday(self, c: int, rng: random.Random, k: float, intents: list) -> None:
        """Up to two everyday transactions, each slot with half the day's total chance."""
        total = sum(rate for _, rate in DAILY_RATES) * k
        for _ in range(2):
            r = rng.random() * 2
            if r >= total:
                continue
            r /= k
            for kind, rate in DAILY_RATES:
                if r < rate:
                    break
                r -= rate
            intents.append((7 * 3600 + rng.randrange(15 * 3600 + 1800), kind, k))

    # --- what each kind of event does to the books ------------------------------------------

    def _do_salary(self, c, day, s, _arg, rng):
        yield self._post(self.ledger.first[c], True, self.ledger.income[c], "salary", "batch", day, s)

    def _do_sms_monthly(self, c, day, s, _arg, rng):
        yield from self._fee(c, day, s, "sms_monthly")

    def _do_card_annual(self, c, day, s, _arg, rng):
        yield from self._fee(c, day, s, "card_annual")

    def _do_small_account(self, c, day, s, _arg, rng):
        yield from self._fee(c, day, s, "small_account")

    def _fee(self, c, day, s, fee_id):
        demand = self.ledger.first[c]
        amount = self.fees[fee_id]
        if amount and self.ledger.balance[demand] >= amount:
            yield self._post(demand, False, amount, fee_id, "batch", day, s)

    def _do_interest(self, c, day, s, _arg, rng):
        demand = self.ledger.first[c]
        interest = int(self.ledger.balance[demand] * DEMAND_RATE / 4)
        if interest > 0:
            yield self._post(demand, True, interest, "interest", "batch", day, s)

    def _do_loan(self, c, day, s, _arg, rng):
        ledger = self.ledger
        for account in ledger.accounts_of(c):
            if ledger.ptype[account] == LOAN and ledger.balance[account] > 0:
                pay = min(ledger.installment[c], ledger.balance[account], ledger.balance[ledger.first[c]])
                if pay > 0:
                    yield from self._internal(c, account, pay, "transfer_out", False, day, s)

    def _do_card_repay(self, c, day, s, _arg, rng):
        ledger = self.ledger
        for account in ledger.accounts_of(c):
            if ledger.ptype[account] == CARD and ledger.balance[account] > 0:
                pay = min(ledger.balance[account], ledger.balance[ledger.first[c]])
                if pay > 0:
                    yield from self._internal(c, account, pay, "transfer_out", False, day, s)

    def _do_mature(self, c, day, s, account, rng):
        """A time deposit or wealth product pays out to the demand deposit and closes."""
        ledger = self.ledger
        principal = ledger.balance[account]
        kind = PRODUCTS[ledger.product[account]]
        if ledger.status[account] != OPEN or ledger.due[account] != day.toordinal():
            return
        if principal > 0:
            earned = int(principal * kind.annual_rate * kind.term_days / 365)
            if ledger.ptype[account] == TIME:
                yield from self._internal(c, account, principal, "deposit_maturity", True, day, s)
                if earned:
                    yield self._post(ledger.first[c], True, earned, "interest", "batch", day, s)
            else:
                yield self._post(account, False, principal, "transfer_out", "internal", day, s)
                yield self._post(ledger.first[c], True, principal + earned, "wealth_redemption",
                                 "internal", day, s)
        ledger.status[account] = CLOSED
        yield self._account(c, account, day, s, "closed")

    def _do_renew(self, c, day, s, account, rng):
        """A card a week from expiry is replaced by one valid five more years."""
        ledger = self.ledger
        due = ledger.due_date(account)
        if due is None or ledger.status[account] != OPEN:
            return
        renewed = _years_later(due, 5)
        ledger.due[account] = renewed.toordinal()
        self._renewing.setdefault((renewed - timedelta(days=CARD_RENEWAL_DAYS)).toordinal(), []).append(account)
        yield self._account(c, account, day, s, "open")

    def _do_card_spend(self, c, day, s, k, rng):
        amount = self._spend_amount(c, "card_spend", k, rng)
        yield from self._debit_demand(c, amount, "card_spend", "pos", day, s)

    def _do_credit_spend(self, c, day, s, k, rng):
        ledger = self.ledger
        card = next((a for a in ledger.accounts_of(c) if ledger.ptype[a] == CARD), None)
        amount = self._spend_amount(c, "credit_spend", k, rng)
        if card is None:
            yield from self._debit_demand(c, amount, "card_spend", "pos", day, s)
        elif amount >= 100 and ledger.balance[card] + amount <= 5_000_000:
            yield self._post(card, False, amount, "pos_purchase", "pos", day, s)

    def _do_atm(self, c, day, s, k, rng):
        ledger = self.ledger
        amount = max(10_000, _round(self._spend_amount(c, "atm", k, rng), -4))
        interbank = rng.random() < (0.45 if ledger.flags[c] & FLAG_OTHER_ATM else 0.05)
        branch = None
        cross = False
        if not interbank and ledger.flags[c] & FLAG_TRAVELLER and rng.random() < 0.4:
            branch = self._branch_elsewhere(ledger.branch[ledger.first[c]], rng)
            cross = branch is not None
        amount = min(amount, ledger.balance[ledger.first[c]] // 10_000 * 10_000)
        if amount >= 10_000:
            yield self._post(ledger.first[c], False, amount, "atm_withdrawal", "atm", day, s,
                             counterparty="OTHER" if interbank else None, cross_region=cross, branch=branch)

    def _do_transfer_out(self, c, day, s, k, rng):
        amount = self._spend_amount(c, "transfer_out", k, rng)
        counter = rng.random() < 0.2
        other = rng.random() < (0.6 if counter else 0.45)
        yield from self._debit_demand(c, amount, "transfer_out", "counter" if counter else "mobile",
                                      day, s, counterparty="OTHER" if other else None)

    def _do_transfer_in(self, c, day, s, k, rng):
        amount = self._inflow_amount(c, "transfer_in", k, rng)
        if amount >= 100:
            yield self._post(self.ledger.first[c], True, amount, "transfer_in", "mobile", day, s,
                             counterparty="OTHER" if rng.random() < 0.5 else None)

    def _do_cash_deposit(self, c, day, s, k, rng):
        amount = _round(self._inflow_amount(c, "cash_deposit", k, rng), -4)
        if amount >= 10_000:
            yield self._post(self.ledger.first[c], True, amount, "cash_deposit",
                             rng.choice(("counter", "atm")), day, s)

    def _do_invest(self, c, day, s, k, rng):
        """An investor puts spare demand money into a time deposit, a wealth product or a fund,
        or redeems part of a fund."""
        ledger = self.ledger
        if not ledger.flags[c] & FLAG_INVESTOR:
            return
        demand = ledger.first[c]
        spare = ledger.balance[demand] - 2 * ledger.spend[c] - 500_000
        funds = [a for a in ledger.accounts_of(c) if ledger.ptype[a] == FUND and ledger.balance[a] > 0]
        if funds and (spare < 1_000_000 or rng.random() < 0.2):
            fund = rng.choice(funds)
            amount = _round(ledger.balance[fund] * rng.uniform(0.1, 0.5), -2)
            if amount > 0:
                yield self._post(fund, False, amount, "transfer_out", "internal", day, s)
                yield self._post(demand, True, amount, "fund_redemption", "mobile", day, s)
            return
        if spare < 1_000_000:
            return
        options = []
        for account in ledger.accounts_of(c):
            if ledger.ptype[account] in (TIME, WEALTH) and ledger.status[account] == CLOSED:
                options.append(account)
            elif ledger.ptype[account] == FUND:
                options.append(account)
        if not options:
            return
        account = rng.choice(options)
        amount = _round(spare * rng.uniform(0.4, 0.9), -5)
        if ledger.ptype[account] == FUND:
            amount = _round(spare * rng.uniform(0.1, 0.4), -5)
            if amount >= 100_000:
                yield from self._internal(c, account, amount, "fund_purchase", False, day, s, channel="mobile",
                                          product_tx="transfer_in")
            return
        yield from self._place(c, account, amount, day, s, rng)

    def _place(self, c, account, amount, day, s, rng):
        """Open a new time deposit or wealth product in a free slot and fund it."""
        ledger = self.ledger
        ptype = PRODUCT_TYPES[ledger.ptype[account]]
        risk = self.ledger.risk[c]
        codes = [code for code in TERM_CODES[ptype]
                 if RISK_LEVELS.index(PRODUCTS[PRODUCT_INDEX[code]].min_risk) <= risk]
        if not codes or amount < 1_000_000:
            return
        product = PRODUCT_INDEX[rng.choice(codes)]
        term = PRODUCTS[product].term_days
        ledger.generation[account] += 1
        ledger.product[account] = product
        ledger.opened[account] = day.toordinal()
        ledger.due[account] = (day + timedelta(days=term)).toordinal()
        ledger.status[account] = OPEN
        ledger.seq[account] = 0
        ledger.set_balance(account, 0)
        self._maturing.setdefault(ledger.due[account], []).append(account)
        yield self._account(c, account, day, s, "open")
        tx = "deposit_placement" if ptype == "time_deposit" else "wealth_purchase"
        channel = "counter" if ptype == "time_deposit" and rng.random() < 0.5 else "mobile"
        yield from self._internal(c, account, amount, tx, False, day, s + 1, channel=channel,
                                  product_tx="transfer_in")

    def _do_riser(self, c, day, s, _arg, rng):
        """A windfall (a bonus, money brought from another bank) that lifts a customer near a
        floor over it."""
        ledger = self.ledger
        aum = ledger.aum[c]
        month = day.year * 12 + day.month
        above = [f for f in self.floors if f > aum]
        if not above or aum < RISER_REACH * above[0] or ledger.drained_until[c] > month:
            return
        amount = _round(above[0] * rng.uniform(1.01, 1.12) - aum, -4)
        yield self._post(ledger.first[c], True, amount, "transfer_in", "mobile", day, s,
                         counterparty="OTHER")

    def _do_drain(self, c, day, s, _arg, rng):
        """Money leaves for another bank, taking the customer well under their tier's floor for
        months (so the tier is watched, then lowered at month-end closes)."""
        ledger = self.ledger
        aum = ledger.aum[c]
        reached = [f for f in self.floors if 0 < f <= aum]
        if not reached:
            return
        target = int(reached[-1] * rng.uniform(0.45, 0.85))
        redemptions, amount = self._raise_cash(c, aum - target, day, s)
        yield from redemptions
        if amount >= 100_000:
            ledger.drained_until[c] = day.year * 12 + day.month + DRAIN_MONTHS
            yield self._post(ledger.first[c], False, amount, "transfer_out", "mobile", day, s + 1,
                             counterparty="OTHER")

    def _do_vip_outflow(self, c, day, s, _arg, rng):
        """A wealthy customer sends a large sum to another bank in one transfer."""
        ledger = self.ledger
        aum = ledger.aum[c]
        if aum < self.vip_floor:
            return
        wanted = max(self.large_outflow, _round(aum * rng.uniform(0.15, 0.35), -5))
        redemptions, amount = self._raise_cash(c, wanted, day, s)
        yield from redemptions
        if amount >= self.large_outflow:
            yield self._post(ledger.first[c], False, amount, "transfer_out",
                             rng.choice(("counter", "mobile")), day, s + 1, counterparty="OTHER")

    def _raise_cash(self, c, wanted, day, s) -> tuple[list[Event], int]:
        """Redeem funds, wealth products and gold until the demand deposit holds ``wanted`` (or
        all there is): the redemptions' postings, and the cash then on the demand deposit."""
        ledger = self.ledger
        demand = ledger.first[c]
        events = []
        for ptype in LIQUID:
            for account in ledger.accounts_of(c):
                short = wanted - ledger.balance[demand]
                if short <= 0:
                    break
                if ledger.ptype[account] != ptype or ledger.status[account] != OPEN:
                    continue
                take = min(short, ledger.balance[account])
                if take <= 0:
                    continue
                tx = {FUND: "fund_redemption", WEALTH: "wealth_redemption"}.get(ptype, "transfer_in")
                events.append(self._post(account, False, take, "transfer_out", "internal", day, s))
                events.append(self._post(demand, True, take, tx, "internal", day, s))
        return events, min(wanted, ledger.balance[demand])

    def _do_valuation(self, c, day, s, _arg, rng):
        """Month-end market value of funds, gold and insurance cash value."""
        ledger = self.ledger
        for account in ledger.accounts_of(c):
            if ledger.ptype[account] in VALUED and ledger.status[account] == OPEN and ledger.balance[account] > 0:
                move = self._market_move(day, ledger.product[account]) + rng.gauss(0, 0.004)
                value = max(0, int(ledger.balance[account] * (1 + move)))
                ledger.set_balance(account, value)
                yield self._snapshot(c, account, day, s)

    # --- helpers ----------------------------------------------------------------------------

    def _spend_amount(self, c, kind, k, rng) -> int:
        rate = RATES[kind]
        mean = self.ledger.spend[c] * SPEND_SHARE[kind] / (30 * rate) / k
        return int(rng.lognormvariate(0, 0.8) * mean * 0.726)  # 0.726 = exp(-0.8**2 / 2)

    def _inflow_amount(self, c, kind, k, rng) -> int:
        rate = RATES[kind]
        base = self.ledger.spend[c] * (0.8 if not self.ledger.income[c] else 0.08)
        mean = base * INFLOW_SHARE[kind] / (30 * rate) / k
        return int(rng.lognormvariate(0, 0.8) * mean * 0.726)

    def _debit_demand(self, c, amount, tx_type, channel, day, s, counterparty=None):
        demand = self.ledger.first[c]
        amount = min(amount, self.ledger.balance[demand])
        if amount >= 100:
            yield self._post(demand, False, amount, tx_type, channel, day, s, counterparty=counterparty)

    def _internal(self, c, account, amount, tx_type, into_demand, day, s, *, channel="internal",
                  product_tx=None):
        """A move between the customer's demand deposit and another of their accounts: the
        demand leg carries ``tx_type``, the product leg a neutral transfer."""
        demand = self.ledger.first[c]
        if into_demand:
            yield self._post(account, False, amount, product_tx or "transfer_out", "internal", day, s)
            yield self._post(demand, True, amount, tx_type, channel, day, s)
        else:
            amount = min(amount, self.ledger.balance[demand])
            if amount <= 0:
                return
            yield self._post(demand, False, amount, tx_type, channel, day, s)
            yield self._post(account, True, amount, product_tx or "transfer_in", "internal", day, s)

    def _post(self, account: int, credit: bool, cents: int, tx_type: str, channel: str, day: date,
              seconds: int, *, counterparty: str | None = None, cross_region: bool = False,
              branch: int | None = None) -> Event:
        ledger = self.ledger
        after = ledger.move(account, credit, cents)
        owner = ledger.owner[account]
        seconds = self._clock = max(seconds, self._clock)  # a customer's events never go back in time
        account_id = self.bank.account_id(owner, ledger.slot[account], ledger.generation[account])
        seq = ledger.seq[account]
        at = self.bank.at(day, seconds)
        data = PostingV1(
            posting_id=f"P{account_id[1:]}-{seq}", customer_id=self.bank.customer_id(owner),
            account_id=account_id, account_seq=seq, product_type=PRODUCT_TYPES[ledger.ptype[account]],
            direction="credit" if credit else "debit", amount=from_cents(cents),
            balance_after=from_cents(after), currency=CURRENCY, tx_type=tx_type, channel=channel,
            counterparty_bank=counterparty, cross_region=cross_region,
            branch_id=self.bank.branches[ledger.branch[account] if branch is None else branch].branch_id,
            posted_at=at,
        )
        self.counts[tx_type] += 1
        if self.observer is not None and not ledger.is_liability(account):
            self.observer.on_aum(owner, ledger.aum[owner], day)
        return self._event(data, f"posting:{data.posting_id}", at)

    def _snapshot(self, c: int, account: int, day: date, seconds: int) -> Event:
        ledger = self.ledger
        seconds = self._clock = max(seconds, self._clock)
        at = self.bank.at(day, seconds)
        account_id = self.bank.account_id(c, ledger.slot[account], ledger.generation[account])
        data = BalanceV1(customer_id=self.bank.customer_id(c), account_id=account_id,
                         product_type=PRODUCT_TYPES[ledger.ptype[account]],
                         balance=from_cents(ledger.balance[account]), currency=CURRENCY, as_of=at)
        if self.observer is not None:
            self.observer.on_aum(c, ledger.aum[c], day)
        return self._event(data, f"balance:{account_id}:{at.isoformat()}", at)

    def _account(self, c: int, account: int, day: date, seconds: int, status: str) -> Event:
        ledger = self.ledger
        kind = PRODUCTS[ledger.product[account]]
        due = ledger.due_date(account)
        account_id = self.bank.account_id(c, ledger.slot[account], ledger.generation[account])
        data = AccountV1(
            account_id=account_id, customer_id=self.bank.customer_id(c),
            branch_id=self.bank.branches[ledger.branch[account]].branch_id,
            product_type=kind.product_type, product_code=kind.code, status=status,
            opened_on=date.fromordinal(ledger.opened[account]),
            maturity_date=due if kind.term_days else None,
            card_expiry=due if not kind.term_days else None,
        )
        seconds = self._clock = max(seconds, self._clock)
        at = self.bank.at(day, seconds)
        return self._event(data, f"account:{account_id}:{status}:{day}:{due}", at)

    def _event(self, data, key: str, at) -> Event:
        event = new_event(data, SOURCE, id=f"sim{self.seed}:{key}", time=at)
        self.counts[event.type] += 1
        return event

    def _branch_elsewhere(self, branch: int, rng: random.Random) -> int | None:
        region = self.bank.branches[branch].region
        others = [i for i, b in enumerate(self.bank.branches) if b.region != region]
        return rng.choice(others) if others else None

    def _market_move(self, day: date, product: int) -> float:
        rng = random.Random(mix_seed(self.seed, "market", day.year, day.month, product))
        kind = PRODUCTS[product]
        if kind.product_type == "insurance":
            return 0.003
        spread = {"FUND-BOND": 0.006, "FUND-INDEX-300": 0.04, "FUND-EQ-GROWTH": 0.055}.get(kind.code, 0.025)
        return rng.gauss(0.003, spread)

    def _stories_of(self, day: date) -> dict[int, tuple[str, int]]:
        key = (day.year, day.month)
        if self._stories is None or self._stories[0] != key:
            rng = random.Random(mix_seed(self.seed, "stories", *key))
            days = calendar.monthrange(*key)[1]
            total = sum(p for _, p in STORY_ODDS)
            stories: dict[int, tuple[str, int]] = {}
            for c in range(self.customers):
                r = rng.random()
                if r < total:
                    for kind, p in STORY_ODDS:
                        if r < p:
                            break
                        r -= p
                    day = rng.randint(1, days)
                    # money leaves early in a month, so that month's average is already below
                    stories[c] = (kind, 1 + day % 8 if kind == "drain" else day)
            self._stories = (key, stories)
        return self._stories[1]

    def _index_dates(self) -> None:
        """Which accounts mature, and which cards are renewed, on which day."""
        ledger = self.ledger
        self._maturing: dict[int, list[int]] = {}
        self._renewing: dict[int, list[int]] = {}
        first = self.start.toordinal() + 1
        for account in range(len(ledger.owner)):
            if ledger.status[account] != OPEN or not ledger.due[account]:
                continue
            if ledger.ptype[account] in (TIME, WEALTH):
                self._maturing.setdefault(ledger.due[account], []).append(account)
            elif ledger.ptype[account] in (DEMAND, CARD):
                renew = max(first, ledger.due[account] - CARD_RENEWAL_DAYS)
                self._renewing.setdefault(renew, []).append(account)

    # --- saving and restoring ---------------------------------------------------------------

    def state(self) -> dict:
        return self.ledger.dynamic_state()

    def restore(self, state: dict, day: date) -> None:
        """Books as saved at the start of ``day``."""
        self.ledger.restore(state)
        self._index_dates()
        for table in (self._maturing, self._renewing):
            for ordinal in [o for o in table if o < day.toordinal()]:
                del table[ordinal]


def _round(cents: float, places: int) -> int:
    """``cents`` rounded to a power of ten (``-2``: whole CNY), as an integer."""
    return int(round(cents, places))


def _installment(plan: CustomerPlan) -> int:
    for account in plan.accounts:
        kind = PRODUCTS[account.product]
        if kind.product_type == "loan" and account.balance:
            months = 240 if kind.code == "LN-MORTGAGE" else 36
            return min(account.balance, max(50_000, _round(account.balance / months, -2)))
    return 0


def _by_owner(ledger: Ledger, accounts) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for account in accounts:
        grouped.setdefault(ledger.owner[account], []).append(account)
    return grouped


def _payday(year: int, month: int, day: int) -> date:
    """Salaries due on a weekend are paid the Friday before."""
    paid = date(year, month, day)
    while paid.weekday() >= 5:
        paid -= timedelta(days=1)
    return paid


def _anniversary(opened: date, day: date) -> bool:
    if opened.month == 2 and opened.day == 29 and not calendar.isleap(day.year):
        return day.month == 2 and day.day == 28
    return (opened.month, opened.day) == (day.month, day.day) and opened.year < day.year


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
