"""The platform's Prometheus metrics. Labels name services, topics and partitions, never
customers, so cardinality stays bounded whatever the size of the bank."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "strata_events_consumed_total", "Events read from the bus and handled (duplicates included).",
    ["service", "topic"],
)
EVENTS_DUPLICATE = Counter(
    "strata_events_duplicate_total", "Events skipped because their id was already processed.",
    ["service", "topic"],
)
EVENTS_EMITTED = Counter(
    "strata_events_emitted_total", "Events published to the bus from the outbox.",
    ["service", "topic"],
)
EVENTS_DEAD_LETTERED = Counter(
    "strata_events_dead_lettered_total", "Events sent to a dead-letter topic.",
    ["service", "topic", "reason"],
)
HANDLER_SECONDS = Histogram(
    "strata_handler_duration_seconds", "Time one handler call takes.",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_SECONDS = Histogram(
    "strata_batch_duration_seconds", "Time to process and commit one consumed batch.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES = Counter(
    "strata_retries_total", "Batches retried after a retryable error (database or bus down).",
    ["service", "stage"],
)
CONSUMER_LAG = Gauge(
    "strata_consumer_lag", "Messages not yet consumed, per partition.",
    ["service", "topic", "partition"],
)
OUTBOX_BACKLOG = Gauge(
    "strata_outbox_backlog", "Events written to the outbox and not yet published.", ["service"],
)
HTTP_EVENTS_ACCEPTED = Counter(
    "strata_http_events_accepted_total", "Events accepted over POST /v1/events.", ["topic"],
)
HTTP_EVENTS_REFUSED = Counter(
    "strata_http_events_refused_total", "Requests to POST /v1/events refused as invalid.", [],
)
HTTP_REQUESTS = Counter(
    "strata_http_requests_total",
    "HTTP requests answered, by route template (never the raw path) and status class (2xx, 4xx, 5xx).",
    ["service", "method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "strata_http_request_duration_seconds", "Time from a request's arrival to the end of its answer.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENTS_UNKNOWN_REFERENCE = Counter(
    "strata_events_unknown_reference_total",
    "Events naming a customer or account the service does not know (yet).",
    ["service", "topic"],
)
EVENTS_LATE = Counter(
    "strata_events_late_total",
    "Events that arrived after later ones of the same customer or account had been applied.",
    ["service", "topic"],
)
READY = Gauge(
    "strata_ready", "1 while the service's database and bus answer and its loops run, else 0.",
    ["service"],
)

