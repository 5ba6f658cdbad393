"""Alerts' business metrics (labels are signal types, never customers or RMs).

Counters move only once the transaction that raised or suppressed the signal has committed
(``tx.after_commit``): a batch rolled back and re-run must not count twice.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SIGNALS_RAISED = Counter("strata_signals_raised_total", "Signals raised.", ["signal_type"])
SIGNALS_SUPPRESSED = Counter(
    "strata_signals_suppressed_total",
    "Signals due by a rule but not raised: inside the suppression window or already raised.",
    ["signal_type"],
)
SIGNALS_STATUS_CHANGES = Counter(
    "strata_signal_status_changes_total", "Signals moved to a status (ack, done, expiry).",
    ["signal_type", "status"],
)
SIGNALS_REROUTED = Counter(
    "strata_signals_rerouted_total", "Active signals handed to a customer's new RM or branch.",
    ["signal_type"],
)
SIGNALS_OPEN = Gauge("strata_signals_open", "Open signals (the RMs' backlog).", ["signal_type"])
SIGNAL_LATENCY = Histogram(
    "strata_signal_latency_seconds",
    "From the triggering event (its CloudEvents time) to the signal being raised.",
    ["signal_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
STALE_EVENTS = Counter(
    "strata_alerts_stale_events_total",
    "AUM, tier or assignment events older than the state in force, which did not move it.",
    ["kind"],
)
DAILY_SCANS = Counter("strata_daily_scans_total", "Daily scans run (re-runs included).")
