"""CloudEvents 1.0 over Kafka and HTTP: binary-mode encoding, binary and structured decoding.

Producers write binary mode (``ce_*`` headers, the JSON data as the value); consumers accept
binary mode and structured mode (``application/cloudevents+json``). Every failure to decode is an
:class:`InvalidEvent` whose message says which field is wrong, for the dead-letter header or the
HTTP problem.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.contracts.topics import BY_CE_TYPE, BY_MODEL, EventType

SPECVERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_EVENT_BYTES = 1_000_000
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")


class InvalidEvent(ValueError):
    """An event that does not meet the contract; ``str(error)`` says what and where."""


@dataclass(frozen=True)
class Event:
    """A decoded, validated event: CloudEvents attributes and the typed data."""

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: BaseModel
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def event_type(self) -> EventType:
        return BY_CE_TYPE[self.type]

    @property
    def topic(self) -> str:
        return self.event_type.topic


def new_event(data: BaseModel, source: str, *, id: str | None = None, time: datetime | None = None,
              extensions: dict[str, str] | None = None, etype: EventType | None = None) -> Event:
    """Wrap contract data as an event of its registered type (or ``etype``, another type of the
    same model), keyed by its customer."""
    if etype is None:
        etype = BY_MODEL[type(data)]
    elif etype.model is not type(data):
        raise TypeError(f"{etype.ce_type} carries {etype.model.__name__}, not {type(data).__name__}")
    return Event(
        id=id or str(uuid.uuid4()),
        source=source,
        type=etype.ce_type,
        subject=etype.key_of(data),
        time=time or datetime.now(timezone.utc),
        data=data,
        extensions=dict(extensions or {}),
    )


def data_json(event: Event) -> bytes:
    return event.data.model_dump_json(by_alias=True).encode()


def encode_binary(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of ``event`` in binary mode."""
    headers = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("content-type", JSON.encode()),
    ]
    headers += [(f"ce_{k}", v.encode()) for k, v in sorted(event.extensions.items())]
    return event.subject.encode(), data_json(event), headers


def to_structured(event: Event) -> dict[str, Any]:
    """The structured-mode JSON object of ``event``."""
    body: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": event.time.isoformat(),
        "datacontenttype": JSON,
        "data": json.loads(data_json(event)),
    }
    body.update(event.extensions)
    return body


def decode_record(value: bytes | None, headers: list[tuple[str, bytes]] | tuple) -> Event:
    """Decode a Kafka record in binary or structured mode and validate its data."""
    if value is None:
        raise InvalidEvent("empty record value")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event of {len(value)} bytes exceeds {MAX_EVENT_BYTES}")
    hdrs = {}
    for k, v in headers or ():
        try:
            hdrs[k.lower()] = v.decode() if v is not None else ""
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {k} is not UTF-8") from exc
    content_type = hdrs.get("content-type", "")
    if content_type.startswith(STRUCTURED) or "ce_type" not in hdrs:
        return decode_structured(_parse_json(value))
    attributes = {k[3:]: v for k, v in hdrs.items() if k.startswith("ce_")}
    if any(not attributes.get(a) for a in REQUIRED_ATTRIBUTES):
        _parse_json(value)  # say "not JSON" first when the value is not even JSON
    return _build(attributes, value)  # validated straight from the bytes (pydantic's JSON parser)


def decode_structured(body: Any) -> Event:
    """Decode one structured-mode CloudEvent (a parsed JSON object)."""
    if not isinstance(body, dict):
        raise InvalidEvent("not a CloudEvent: expected a JSON object with specversion, id, source, type")
    attributes = {k: v for k, v in body.items() if k not in ("data", "data_base64")}
    missing = [a for a in REQUIRED_ATTRIBUTES if a not in attributes]
    if missing:  # say so before anything else: a bare data object is the usual mistake
        raise InvalidEvent(f"not a CloudEvent: missing {', '.join(missing)}")
    if "data" not in body:
        raise InvalidEvent("CloudEvent has no data")
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise InvalidEvent(f"CloudEvent attribute {name} must be a string")
    return _build(attributes, body["data"])


def _parse_json(value: bytes) -> Any:
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"value is not JSON: {exc}") from exc


def _build(attributes: dict[str, str], data: Any) -> Event:
    missing = [a for a in REQUIRED_ATTRIBUTES if not attributes.get(a)]
    if missing:
        raise InvalidEvent(f"not a CloudEvent: missing {', '.join(missing)}")
    if attributes["specversion"] != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion {attributes['specversion']!r}")
    etype = BY_CE_TYPE.get(attributes["type"])
    if etype is None:
        raise InvalidEvent(f"unknown ce_type {attributes['type'][:80]!r}")
    if len(attributes["id"]) > 200:
        raise InvalidEvent("id longer than 200 characters")
    try:
        if isinstance(data, bytes):
            model = etype.model.model_validate_json(data)
        else:
            model = etype.model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            raise InvalidEvent(f"value is not JSON: {first.get('msg', '')}") from exc
        raise InvalidEvent(describe_validation_error(exc)) from exc
    subject = etype.key_of(model)
    if attributes.get("subject") and attributes["subject"] != subject:
        raise InvalidEvent(f"subject {attributes['subject'][:80]!r} is not the customer_id {subject!r}")
    time = _parse_time(attributes.get("time"))
    known = set(REQUIRED_ATTRIBUTES) | {"subject", "time", "datacontenttype", "dataschema"}
    extensions = {k: v for k, v in attributes.items() if k not in known}
    return Event(attributes["id"], attributes["source"], etype.ce_type, subject, time, model, extensions)


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEvent(f"time {text[:40]!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise InvalidEvent("time needs an offset (RFC 3339)")
    # readers order records by this time (e.g. two upserts of one account): a time in the far
    # future would let one record win against every later one
    if not (2000 <= parsed.year <= 2199):
        raise InvalidEvent(f"time {text[:40]!r} out of range (2000-2199)")
    return parsed


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each wrong field: ``data.amount: not an amount...; data.currency: ...``."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in ("data", *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
