"""The AsyncAPI 3 document of every topic Strata reads and writes, generated from the contract
models, so the document cannot drift from the code (a test compares it with docs/asyncapi.json).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from shared.contracts.topics import EVENT_TYPES, dead_letter_topic

CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 binary mode: attributes as ce_* headers.",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique per event; the idempotency key."},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string"},
        "ce_subject": {"type": "string", "description": "The customer_id (also the Kafka key)."},
        "ce_time": {"type": "string", "format": "date-time"},
        "content-type": {"type": "string", "const": "application/json"},
    },
}

DLQ_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original record's headers, plus why it could not be processed.",
    "properties": {
        "strata_dlq_reason": {"type": "string", "description": "What is wrong, naming the field."},
        "strata_dlq_category": {"type": "string", "enum": ["invalid", "wrong_topic", "rejected", "handler_error"]},
        "strata_dlq_service": {"type": "string"},
        "strata_dlq_source": {"type": "string", "description": "topic/partition/offset of the original"},
    },
}


def _message_name(ce_type: str) -> str:
    return ce_type.replace(".", "_")


def build(services: Iterable[Any] = ()) -> dict[str, Any]:
    """The document; ``services`` (ServiceSpecs) add which service sends and receives what."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for etype in EVENT_TYPES:
        name = _message_name(etype.ce_type)
        schema = etype.model.model_json_schema(mode="serialization", by_alias=True,
                                               ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[etype.model.__name__] = schema
        messages[name] = {
            "name": etype.ce_type,
            "title": etype.model.__name__,
            "summary": (etype.model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": CE_HEADERS,
            "payload": {"$ref": f"#/components/schemas/{etype.model.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "customer_id"}}},
        }
        channel = channels.setdefault(_channel(etype.topic), {
            "address": etype.topic,
            "description": ("inbound from core banking" if etype.inbound else
                            "emitted by Strata" + ("" if etype.public else " (internal)")),
            "messages": {},
        })
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}  # a topic may carry several
        dlq = dead_letter_topic(etype.topic)
        channels[_channel(dlq)] = {
            "address": dlq,
            "description": f"records of {etype.topic} that could not be processed, unchanged",
            "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        }
    messages["deadLetter"] = {
        "name": "dead-letter", "title": "Dead letter",
        "summary": "The original record's key and value, with the reason in headers.",
        "headers": DLQ_HEADERS, "payload": {},
    }
    operations: dict[str, Any] = {}
    for spec in services:
        received = list(spec.subscriptions)
        if getattr(spec, "keeps_access", False):
            received += [t for t in ("bank.customers", "strata.assignments") if t not in received]
        for topic in received:
            operations[f"{spec.name}_receives_{_channel(topic)}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{_channel(topic)}"},
                "summary": f"{spec.name} consumes {topic}",
            }
        for topic in spec.emits:
            operations[f"{spec.name}_sends_{_channel(topic)}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{_channel(topic)}"},
                "summary": f"{spec.name} publishes {topic}",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Strata events",
            "version": "1.0.0",
            "description": "Every topic Strata reads and writes. Events are CloudEvents 1.0 in binary "
                           "mode, keyed by customer_id; amounts are decimal strings in CNY.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": dict(sorted(operations.items())),
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def _channel(topic: str) -> str:
    return topic.replace(".", "_")


def render(services: Iterable[Any] = ()) -> str:
    return json.dumps(build(services), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":  # python -m shared.contracts.asyncapi > docs/asyncapi.json
    import sys

    from strata.registry import load_all

    sys.stdout.write(render(load_all()))
