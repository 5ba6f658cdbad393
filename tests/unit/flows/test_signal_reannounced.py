"""A signal announced again with its status unchanged (a re-route to a new RM, or a trigger that
takes the signal over) is taken as announced by the read models that keep signals: profile's
360 and assignment's worklist."""

import json
from datetime import datetime, timezone

from sqlalchemy import select

from services.assignment.models import AssignmentSignal
from services.profile.models import ProfileSignal
from shared.contracts.events import SignalV1
from tests.conftest import private_strata


def announced(raised_at: datetime, evidence: dict, rm: str) -> SignalV1:
    return SignalV1(id="SIG-RE-1", signal_type="vip_outflow", customer_id="RE-C1", rm_id=rm, branch_id="BR-RE",
                    status="open", raised_at=raised_at, evidence=evidence)


async def test_the_last_announcement_of_an_open_signal_is_what_profile_and_assignment_keep():
    first = datetime(2026, 11, 5, 7, 0, tzinfo=timezone.utc)
    earlier = datetime(2026, 11, 5, 1, 0, tzinfo=timezone.utc)
    async with private_strata(["profile", "assignment"]) as strata:
        await strata.publish(announced(first, {"trigger": "aum_drop"}, "RM-A"))
        await strata.settle()
        await strata.publish(announced(earlier, {"trigger": "large_outflow", "posting_id": "P-1"}, "RM-B"))
        await strata.settle()
        async with strata.runtime.db.sessions() as session:
            profile = (await session.execute(select(ProfileSignal))).scalar_one()
            assignment = (await session.execute(select(AssignmentSignal))).scalar_one()
    assert (profile.rm_id, json.loads(profile.evidence)["trigger"], profile.raised_at) == ("RM-B", "large_outflow", earlier)
    assert (assignment.status, assignment.raised_at) == ("open", earlier)
