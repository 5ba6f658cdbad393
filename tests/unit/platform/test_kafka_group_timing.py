"""Consumer group timing comes from the settings (``kafka.*``), checked for consistency."""

import pytest
from pydantic import ValidationError

from shared.bus import build_bus
from shared.settings import Settings


async def test_group_timing_reaches_every_consumer():
    settings = Settings(bus="kafka", kafka={"session_timeout_ms": 45_000, "heartbeat_interval_ms": 5_000,
                                            "max_poll_interval_ms": 600_000})
    consumer = build_bus(settings).consumer("g", ["bank.postings"])._consumer
    assert consumer._session_timeout_ms == 45_000
    assert consumer._heartbeat_interval_ms == 5_000
    assert consumer._max_poll_interval_ms == 600_000


async def test_defaults_keep_a_dead_instance_s_partitions_idle_at_most_15_s():
    consumer = build_bus(Settings(bus="kafka")).consumer("g", ["bank.postings"])._consumer
    assert (consumer._session_timeout_ms, consumer._heartbeat_interval_ms) == (15_000, 3_000)


def test_a_heartbeat_slower_than_a_third_of_the_session_is_refused():
    with pytest.raises(ValidationError, match="heartbeat_interval_ms"):
        Settings(kafka={"session_timeout_ms": 6_000, "heartbeat_interval_ms": 3_000})


async def test_a_customers_partitions_of_every_topic_go_to_one_instance():
    """Range assignment: partition p of each topic to the same member, so one instance holds all
    of a customer's topics (every topic is keyed by customer with the same partition count)."""
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor

    consumer = build_bus(Settings(bus="kafka")).consumer("g", ["bank.accounts", "strata.tiering.changes"])._consumer
    assert consumer._partition_assignment_strategy == (RangePartitionAssignor,)
