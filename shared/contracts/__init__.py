"""The outside contract: event models, topics and the CloudEvents codec."""

from shared.contracts.cloudevents import (
    BATCH,
    STRUCTURED,
    Event,
    InvalidEvent,
    decode_record,
    decode_structured,
    encode_binary,
    new_event,
    to_structured,
)
from shared.contracts.events import *  # noqa: F401,F403
from shared.contracts.topics import BY_CE_TYPE, BY_TOPIC, EVENT_TYPES, all_topics, dead_letter_topic

__all__ = [
    "BATCH", "STRUCTURED", "Event", "InvalidEvent", "decode_record", "decode_structured",
    "encode_binary", "new_event", "to_structured", "BY_CE_TYPE", "BY_TOPIC", "EVENT_TYPES",
    "all_topics", "dead_letter_topic",
]
