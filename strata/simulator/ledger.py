"""The simulated bank's books in compact form: one slot per account in typed arrays (integer
cents, ``account_seq``, product, dates as ordinals), and the few numbers per customer the
behaviour needs. A million customers' books fit in tens of megabytes, and the state saves to and
restores from a small JSON document."""

from __future__ import annotations

import base64
import sys
from array import array
from datetime import date

from strata.simulator.bank import AccountPlan, CustomerPlan
from strata.simulator.catalogue import LIABILITY_TYPES, RISK_LEVELS, PRODUCT_TYPES, PRODUCTS, TYPE_INDEX

AUM_TYPE_CODES = frozenset(TYPE_INDEX[t] for t in PRODUCT_TYPES if t not in LIABILITY_TYPES)
LIABILITY_TYPE_CODES = frozenset(TYPE_INDEX[t] for t in LIABILITY_TYPES)

CLOSED, OPEN = 0, 1

# Arrays that change as the bank runs (saved), and those drawn again from the seed (not saved).
DYNAMIC_ACCOUNT = ("balance", "seq", "generation", "product", "opened", "due", "status")
DYNAMIC_CUSTOMER = ("drained_until",)


class Ledger:
    """Accounts ``first[c]`` .. ``first[c + 1] - 1`` belong to customer ``c``; slot 0 is always
    the demand deposit the customer's card and salary run through."""

    def __init__(self) -> None:
        # per account
        self.owner = array("l")
        self.slot = array("b")
        self.ptype = array("b")
        self.branch = array("b")
        self.balance = array("q")
        self.seq = array("q")
        self.generation = array("l")
        self.product = array("b")
        self.opened = array("l")
        self.due = array("l")
        self.status = array("b")
        # per customer
        self.first = array("l", [0])
        self.home = array("b")
        self.income = array("q")
        self.payday = array("b")
        self.spend = array("q")
        self.installment = array("q")
        self.flags = array("h")
        self.risk = array("b")
        self.aum = array("q")
        self.drained_until = array("l")

    @property
    def customers(self) -> int:
        return len(self.home)

    def add_customer(self, plan: CustomerPlan, installment: int) -> None:
        aum = 0
        for account in plan.accounts:
            self._add_account(plan.index, account)
            if self.ptype[-1] in AUM_TYPE_CODES:
                aum += account.balance
        self.first.append(len(self.owner))
        self.home.append(plan.branch)
        self.income.append(plan.income)
        self.payday.append(plan.payday)
        self.spend.append(max(0, plan.spend - installment))
        self.installment.append(installment)
        self.flags.append(plan.flags)
        self.risk.append(RISK_LEVELS.index(plan.risk_level))
        self.aum.append(aum)
        self.drained_until.append(0)

    def _add_account(self, owner: int, plan: AccountPlan) -> None:
        self.owner.append(owner)
        self.slot.append(plan.slot)
        self.ptype.append(TYPE_INDEX[PRODUCTS[plan.product].product_type])
        self.branch.append(plan.branch)
        self.balance.append(plan.balance if plan.open else 0)
        self.seq.append(0)
        self.generation.append(1 if plan.open else 0)
        self.product.append(plan.product)
        self.opened.append(plan.opened_on.toordinal())
        self.due.append(plan.due.toordinal() if plan.due else 0)
        self.status.append(OPEN if plan.open else CLOSED)

    def accounts_of(self, customer: int) -> range:
        return range(self.first[customer], self.first[customer + 1])

    def is_liability(self, account: int) -> bool:
        return self.ptype[account] in LIABILITY_TYPE_CODES

    def move(self, account: int, credit: bool, cents: int) -> int:
        """Post ``cents`` to ``account``; returns the balance after. A credit raises a deposit
        or holding and lowers what is owed on a loan or card; a debit does the opposite."""
        sign = 1 if credit else -1
        if self.ptype[account] in LIABILITY_TYPE_CODES:
            sign = -sign
        after = self.balance[account] + sign * cents
        if after < 0:
            raise ValueError(f"account {account} would go below zero")
        self.set_balance(account, after)
        self.seq[account] += 1
        return after

    def set_balance(self, account: int, cents: int) -> None:
        if self.ptype[account] in AUM_TYPE_CODES:
            self.aum[self.owner[account]] += cents - self.balance[account]
        self.balance[account] = cents

    def due_date(self, account: int) -> date | None:
        return date.fromordinal(self.due[account]) if self.due[account] else None

    # --- saving -----------------------------------------------------------------------------

    def dynamic_state(self) -> dict:
        arrays = {name: _encode(getattr(self, name)) for name in DYNAMIC_ACCOUNT + DYNAMIC_CUSTOMER}
        return {"byteorder": sys.byteorder, "accounts": len(self.owner), "arrays": arrays}

    def restore(self, state: dict) -> None:
        if state["accounts"] != len(self.owner):
            raise ValueError("the saved books do not belong to this bank (account count differs)")
        for name, text in state["arrays"].items():
            current = getattr(self, name)
            restored = array(current.typecode)
            restored.frombytes(base64.b64decode(text))
            if state.get("byteorder", sys.byteorder) != sys.byteorder:
                restored.byteswap()
            if len(restored) != len(current):
                raise ValueError(f"saved array {name} has {len(restored)} items, not {len(current)}")
            setattr(self, name, restored)
        self.aum = array("q", [0] * self.customers)
        for account, owner in enumerate(self.owner):
            if self.ptype[account] in AUM_TYPE_CODES:
                self.aum[owner] += self.balance[account]


def _encode(values: array) -> str:
    return base64.b64encode(values.tobytes()).decode()
