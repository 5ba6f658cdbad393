"""The bus interface and its two adapters."""

from shared.bus.base import Bus, BusUnavailable, Consumer, Message, Record
from shared.bus.memory import MemoryBus

__all__ = ["Bus", "BusUnavailable", "Consumer", "Message", "Record", "MemoryBus", "build_bus"]


def build_bus(settings) -> Bus:
    """The adapter the settings ask for: ``kafka`` (distributed) or ``memory`` (single-process)."""
    if settings.bus == "memory":
        return MemoryBus(default_partitions=settings.kafka.partitions)
    from shared.bus.kafka import KafkaBus

    return KafkaBus(settings.kafka.bootstrap_servers, settings.kafka.client_id,
                    settings.kafka.replication_factor, topic_prefix=settings.kafka.topic_prefix)
