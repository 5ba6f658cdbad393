"""What assignment reads and writes on the bus.

Everything assignment decides from comes from one internal topic, ``strata.tiering.changes``:
each customer's facts in the order tiering applied them (core banking's customer records with
the home branch and name, tier decisions, the tier, watch and AUM after every fact; see
``shared.contracts.events.TieringChangeV1``), so a home-branch change and a tier change of one
customer are decided in the customer's order. It is applied in event-time order across every
partition the instance holds (``ORDERED``, scope ``all``): balanced distribution between equal
RMs depends on the order customers are placed in, and that order is then one defined order,
not the accident of which partition a fetch brought first. ``strata.signals`` only feeds the
worklist's counts.
"""

from shared.contracts import topics
from services.assignment import service

SUBSCRIPTIONS = {
    topics.TIERING_CHANGES: service.on_tiering_change,
    topics.SIGNALS: service.on_signal,
}
ORDERED = (topics.TIERING_CHANGES,)
EMITS = (topics.ASSIGNMENTS, topics.CONTACTS)
