"""Tiering's business metrics (no per-customer labels)."""

from prometheus_client import Counter, Gauge

TIER_CHANGES = Counter("strata_tier_changes_total", "Tier and watch changes.", ["change", "tier"])
STALE_EVENTS = Counter(
    "strata_tiering_stale_events_total",
    "Postings, snapshots and customer records older than what is applied, which moved nothing.", ["kind"],
)
RESENT_POSTINGS = Counter(
    "strata_tiering_resent_postings_total",
    "Postings an account had applied before (sent again, perhaps under another ce_id): passed on to no one.",
)
CUSTOMERS_CREATED = Counter("strata_tiering_customers_created_total", "Customers first seen by tiering.")
MONTH_CLOSES = Counter("strata_month_closes_total", "Month-end closes performed.")
CUSTOMERS_BY_TIER = Gauge("strata_customers_by_tier", "Customers in each tier.", ["tier"])
AUM_BY_TIER = Gauge("strata_aum_by_tier_cny", "Total AUM of the customers in each tier (CNY).", ["tier"])
WATCH_CUSTOMERS = Gauge("strata_customers_on_watch", "Customers on downgrade watch.", [])
