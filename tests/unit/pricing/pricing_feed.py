"""Postings the way core banking sends them, for the pricing tests: each account's
``account_seq`` counts up and ``balance_after`` follows the amounts."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from shared.contracts.events import CustomerV1, PostingV1


class Feed:
    def __init__(self, customer_id: str, branch_id: str = "BR-1") -> None:
        self.customer_id = customer_id
        self.branch_id = branch_id
        self.seq: dict[str, int] = defaultdict(int)
        self.balance: dict[str, Decimal] = defaultdict(Decimal)
        self.count = 0

    def post(self, tx_type: str, amount: str, *, at: str, direction: str = "debit",
             account: str = "CUR", product_type: str = "demand_deposit", channel: str = "atm",
             counterparty_bank: str | None = None, cross_region: bool = False,
             pid: str | None = None) -> PostingV1:
        account_id = f"{self.customer_id}-{account}"
        self.seq[account_id] += 1
        delta = Decimal(amount) if direction == "credit" else -Decimal(amount)
        self.balance[account_id] += delta
        self.count += 1
        return PostingV1(
            posting_id=pid or f"{account_id}-{self.seq[account_id]}", customer_id=self.customer_id,
            account_id=account_id, account_seq=self.seq[account_id], product_type=product_type,
            direction=direction, amount=amount, balance_after=f"{self.balance[account_id]:.2f}",
            currency="CNY", tx_type=tx_type, channel=channel, counterparty_bank=counterparty_bank,
            cross_region=cross_region, branch_id=self.branch_id, posted_at=at,
        )

    def salary(self, amount: str, at: str) -> PostingV1:
        return self.post("salary", amount, at=at, direction="credit", channel="batch")

    def interbank_atm(self, at: str, amount: str = "100.00") -> PostingV1:
        return self.post("atm_withdrawal", amount, at=at, counterparty_bank="OTHER")

    def sms(self, at: str) -> PostingV1:
        return self.post("sms_monthly", "2.00", at=at, channel="batch")

    def card_spend(self, amount: str, at: str) -> PostingV1:
        return self.post("card_spend", amount, at=at, channel="pos")

    def fund_purchase(self, amount: str, at: str) -> list[PostingV1]:
        """Both legs: the current account debited, the fund credited."""
        return [self.post("fund_purchase", amount, at=at, channel="mobile"),
                self.post("fund_purchase", amount, at=at, direction="credit", account="FUND",
                          product_type="fund", channel="mobile")]


def customer(customer_id: str, *, auto_points_offset: bool = False, risk_level: str | None = "C3",
             branch: str = "BR-1", updated_at: str = "2026-11-01T09:00:00+08:00") -> CustomerV1:
    return CustomerV1(customer_id=customer_id, name="王芳", home_branch_id=branch,
                      risk_level=risk_level, auto_points_offset=auto_points_offset,
                      updated_at=updated_at)
