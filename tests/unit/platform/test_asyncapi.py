"""The AsyncAPI document is generated from the contract models and kept in docs/."""

from pathlib import Path

from shared.contracts.asyncapi import build, render
from shared.contracts.topics import EVENT_TYPES
from strata.registry import load_all

DOC = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_committed_document_matches_the_models():
    assert DOC.read_text(encoding="utf-8") == render(load_all()), (
        "docs/asyncapi.json is stale: regenerate with "
        "`python -m shared.contracts.asyncapi > docs/asyncapi.json`"
    )


def test_every_topic_and_its_dead_letter_topic_is_a_channel():
    doc = build()
    addresses = {c["address"] for c in doc["channels"].values()}
    for etype in EVENT_TYPES:
        assert etype.topic in addresses and f"{etype.topic}.dlq" in addresses


def test_payload_schemas_carry_every_model_field_and_amounts_as_strings():
    schemas = build()["components"]["schemas"]
    for etype in EVENT_TYPES:
        props = schemas[etype.model.__name__]["properties"]
        for name, field in etype.model.model_fields.items():
            assert (field.alias or name) in props
    assert schemas["PostingV1"]["properties"]["amount"]["type"] == "string"


def test_operations_name_who_sends_and_receives_each_topic():
    doc = build(load_all())
    assert "tiering_receives_bank_postings" in doc["operations"]
    assert "tiering_sends_strata_tiers" in doc["operations"]


def test_tierings_stream_is_one_internal_channel_its_three_readers_receive():
    doc = build(load_all())
    channel = doc["channels"]["strata_tiering_changes"]
    assert channel["address"] == "strata.tiering.changes" and "(internal)" in channel["description"]
    assert sorted(channel["messages"]) == ["strata_tiering_change_v1"]
    operations = doc["operations"]
    assert "tiering_sends_strata_tiering_changes" in operations
    assert {"alerts_receives_strata_tiering_changes", "pricing_receives_strata_tiering_changes"} <= set(operations)
    assert not {f"{s}_receives_{c}" for s in ("alerts", "pricing")
                for c in ("strata_aum", "strata_tiers", "bank_postings")} & set(operations)
