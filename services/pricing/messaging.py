"""What pricing reads and writes on the bus.

Everything pricing decides comes from one topic, ``strata.tiering.changes``: each customer's
facts in the order tiering applied them, each posting with the tier in force right after it,
core banking's customer records, the tier decisions (see the package docstring for why). It
never reads ``bank.postings`` or ``strata.tiers``. It emits a fee event per posting
(``strata.fees``) and a correction of an assessed fee when an upgrade is decided late
(``strata.fee_adjustments``).
"""

from shared.contracts import topics
from services.pricing import service

SUBSCRIPTIONS = {
    topics.TIERING_CHANGES: service.on_tiering_change,
}
EMITS = (topics.FEES, topics.FEE_ADJUSTMENTS)
