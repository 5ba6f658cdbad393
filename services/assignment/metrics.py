"""Assignment's business metrics (labels are levels, roles and reason codes, never an RM or a
customer)."""

from prometheus_client import Counter, Gauge

ASSIGNMENT_CHANGES = Counter(
    "strata_assignment_changes_total", "Primary and backup RM changes, by reason.", ["role", "reason"],
)
CLAIMS = Counter(
    "strata_assignment_claims_total", "Familiarity claims, accepted or refused (with the refusal code).",
    ["outcome", "reason"],
)
HANDOVERS = Counter("strata_assignment_handovers_total", "Book handovers performed.", [])
BOOK_CUSTOMERS = Gauge(
    "strata_assignment_book_customers", "Customers held by the RMs of each level, by role.", ["level", "role"],
)
BOOK_WEIGHT = Gauge(
    "strata_assignment_book_weight", "Weighted primary book of the RMs of each level.", ["level"],
)
RMS = Gauge("strata_assignment_rms", "RMs in the registry, by level and state.", ["level", "active"])
UNASSIGNED = Gauge(
    "strata_assignment_unassigned_customers",
    "Customers above mass with no primary RM (no eligible RM with room, or home branch unknown).", [],
)
NO_BACKUP = Gauge(
    "strata_assignment_customers_without_backup", "Customers with a primary RM but no backup RM.", [],
)
