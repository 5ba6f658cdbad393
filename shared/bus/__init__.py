"""The bus interface and its two adapters."""

from shared.bus.base import Bus, BusUnavailable, Consumer, Message, Record
from shared.bus.memory import MemoryBus

__all__ = ["Bus", "BusUnavailable", "Consumer", "Message", "Record", "MemoryBus", "build_bus"]


def build_bus(settings) -> Bus:
    """The adapter the settings ask for: ``kafka`` (distributed) or ``memory`` (single-process)."""
    if settings.bus == "memory":
        return MemoryBus(default_partitions=settings.kafka.partitions)
    from shared.bus.kafka import KafkaBus

    kafka = settings.kafka
    return KafkaBus(kafka.bootstrap_servers, kafka.client_id, kafka.replication_factor,
                    topic_prefix=kafka.topic_prefix,
                    group_timing={"session_timeout_ms": kafka.session_timeout_ms,
                                  "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
                                  "max_poll_interval_ms": kafka.max_poll_interval_ms})
