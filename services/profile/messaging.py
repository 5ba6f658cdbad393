"""What profile reads on the bus: master data from core banking and every Strata topic. It
emits nothing; other systems read it over HTTP."""

from shared.contracts import topics
from services.profile import service

SUBSCRIPTIONS = {
    topics.CUSTOMERS: service.on_customer,
    topics.ACCOUNTS: service.on_account,
    topics.AUM: service.on_aum,
    topics.TIERS: service.on_tier,
    topics.SIGNALS: service.on_signal,
    topics.FEES: service.on_fee,
    topics.ASSIGNMENTS: service.on_assignment,
    topics.CONTACTS: service.on_contact,
}
EMITS: tuple[str, ...] = ()
