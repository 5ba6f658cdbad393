"""Assignment: every customer above mass with a named primary and backup RM (责任到人), by tier
correspondence, familiarity claims and balanced distribution; the RM registry, handovers,
worklists, follow-ups and the audit trail of every change.

**One order.** Assignment reads tiering's stream (``strata.tiering.changes``): a customer's
home-branch changes and tier decisions arrive in the order tiering applied them. Balanced
distribution between equal RMs also depends on the order *customers* are placed in (the second
gold customer of a branch goes to whichever RM the first left lighter), so the stream is applied
in event-time order over every partition the instance holds (``order_scope="all"``): one
instance ends with the same assignments whatever its batches and however Kafka interleaves the
partitions, and the single-process mode with the same as the distributed one. Tiering writes
the stream in its own event-time order, which may hold one partition's records up to
``runtime.max_lateness_s`` behind another's, and writes its partitions in turns, batch by
batch; so assignment waits twice that bound and ``runtime.stream_wait_s`` (2 s) more for a
quiet partition (``upstream_orders=1``) before it counts what comes later as late.

**Two instances.** Every decision reads and changes the books of all the branch's RMs, so
decisions take turns (``AssignmentState.take_turn``: one transaction-scoped advisory lock on
PostgreSQL, held to commit): with two instances in the group, no RM is ever filled beyond
capacity, no customer is assigned twice (event ids are recorded per group) and each customer's
own facts stay in order (all in one partition, so in one instance). What two instances cannot
give is the one order across customers: each orders only the partitions it holds, and which of
their batches takes the turn first is timing. The assignments are still valid and balanced as
the rule says at each decision, but between equal RMs a run may differ from a single instance's
(and from another run); a rebalance moves partitions mid-stream, with the same effect. Since
the turn serialises the decisions anyway, a second instance adds availability, not throughput:
run one (``docker-compose.yml`` does), and let a second take over only when the first is gone.

**Upgrading from a version that read strata.tiers, bank.customers and strata.aum.** The group
has no offsets on ``strata.tiering.changes`` yet and would read it from the earliest record
kept, deciding again on facts long past. Stop the old version, then set the group's offsets
on the stream to the time it stopped (``kafka-consumer-groups --group strata.assignment
--topic strata.tiering.changes --reset-offsets --to-datetime ... --execute``) before starting
this one; a record read twice whose tier and home branch are the ones held moves no one. Names, watch and months below fill in as each customer's next record comes.
"""

from __future__ import annotations

from shared.runtime.service import ServiceSpec, business_gauges


def spec() -> ServiceSpec:
    from services.assignment.messaging import EMITS, ORDERED, SUBSCRIPTIONS
    from services.assignment.service import refresh_gauges
    from services.assignment.state import AssignmentState
    from services.assignment.views import router

    # Assignment decides who serves whom, so it checks access against its own assignments (always
    # current) rather than keeping a projection of its own events. Its stream is applied in one
    # event-time order across all its partitions (see the module docstring).
    return ServiceSpec("assignment", SUBSCRIPTIONS, (router,), EMITS, (business_gauges(refresh_gauges),),
                       state=AssignmentState, keeps_access=False, ordered=ORDERED, order_scope="all",
                       upstream_orders=1)
