"""Pricing's business metrics (labels are fee ids and tier ids from the settings, never customers).

Handlers count through ``tx.after_commit``, so a batch that is rolled back and run again is
counted once.
"""

from __future__ import annotations

from prometheus_client import Counter

POSTINGS_PRICED = Counter("strata_postings_priced_total", "Postings priced (one per posting id).",
                          ["tier"])
FEES_CHARGED = Counter("strata_fees_charged_total",
                       "Priced postings left with a fee to pay after waivers and discounts.", ["fee", "tier"])
FEES_CHARGED_CNY = Counter("strata_fees_charged_cny_total",
                           "Fees charged after waivers and discounts, paid in cash or points (CNY).",
                           ["fee", "tier"])
FEES_WAIVED = Counter("strata_fees_waived_total",
                      "Priced postings whose fee was reduced by a waiver, free use or discount.", ["fee", "tier"])
FEES_WAIVED_CNY = Counter("strata_fees_waived_cny_total",
                          "Fees given up through waivers, free uses and discounts (CNY).", ["fee", "tier"])
FEE_ADJUSTMENTS = Counter("strata_fee_adjustments_total",
                          "Assessed fees corrected in the customer's favour after an upgrade decided late.",
                          ["fee", "tier"])
FEES_REFUNDED_CNY = Counter("strata_fees_refunded_cny_total",
                            "Fees refunded by corrections after an upgrade decided late (CNY).", ["fee", "tier"])
POINTS_EARNED = Counter("strata_points_earned_total", "Points earned.", ["rule"])
POINTS_SPENT = Counter("strata_points_spent_total", "Points spent on fees.", ["rule"])
POINTS_EXPIRED = Counter("strata_points_expired_total", "Points expired.", [])
UNKNOWN_TX_TYPES = Counter("strata_pricing_unknown_tx_types_total",
                           "Postings of a tx_type the contract does not list, priced at zero.", [])
DUPLICATE_POSTINGS = Counter("strata_pricing_duplicate_postings_total",
                             "Postings that arrived again after being priced, and were not priced again.", [])
