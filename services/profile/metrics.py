"""Profile's metrics: how far the read model trails each topic, and what segments cost (no
per-customer, per-RM or per-template labels)."""

from prometheus_client import Counter, Gauge, Histogram

READ_MODEL_LAG = Gauge(
    "strata_profile_read_model_lag_seconds",
    "Seconds between an event's time and its application to the customer 360 read model, "
    "for the last event applied from each topic.",
    ["topic"],
)
STALE_EVENTS = Counter(
    "strata_profile_stale_events_total",
    "Events older than the data already applied (master data, AUM, tier, assignment), ignored.",
    ["topic"],
)
DUPLICATE_FACTS = Counter(
    "strata_profile_duplicate_facts_total",
    "The same business fact under a new event id (a priced posting, a tier change), applied once.",
    ["topic"],
)
SEGMENT_QUERY_SECONDS = Histogram(
    "strata_profile_segment_query_seconds",
    "Time to answer a segment members query (JSON page) or to stream a whole export (CSV).",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SEGMENT_ROWS = Counter(
    "strata_profile_segment_rows_total", "Segment members returned, by format.", ["format"],
)
SEGMENT_REFUSED = Counter(
    "strata_profile_segment_refused_total", "Segment templates or queries refused as invalid (422).", [],
)
