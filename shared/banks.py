"""Which bank a posting's counterparty is: one rule for every service that tells this bank's
business from another bank's (pricing's interbank fees, alerts' large outflows)."""

from __future__ import annotations

from typing import Collection


def is_other_bank(counterparty_bank: str | None, own_bank_codes: Collection[str]) -> bool:
    """Whether ``counterparty_bank`` is another bank. Core banking leaves it null for this
    bank's own business, or fills it with one of this bank's own codes
    (``pricing.own_bank_codes``); anything else is another bank.

    >>> is_other_bank(None, []), is_other_bank("ICBC-NC", ["ICBC-NC"]), is_other_bank("CCB", ["ICBC-NC"])
    (False, False, True)
    """
    return counterparty_bank is not None and counterparty_bank not in own_bank_codes
