"""The outside contract: strict models and the CloudEvents codec."""

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.contracts import InvalidEvent, decode_record, decode_structured, encode_binary, new_event, to_structured
from shared.contracts.events import BalanceV1, CustomerV1, FeeAssessedV1, PostingV1, TierChangedV1

POSTING = {
    "posting_id": "P00000000017", "customer_id": "C000123", "account_id": "A000991",
    "account_seq": 17, "product_type": "demand_deposit", "direction": "debit",
    "amount": "3000.00", "balance_after": "48210.55", "currency": "CNY",
    "tx_type": "atm_withdrawal", "channel": "atm", "counterparty_bank": "OTHER",
    "cross_region": False, "branch_id": "BR-NC-001", "posted_at": "2026-11-28T10:15:02+08:00",
}


def test_contract_example_posting_is_valid_and_amounts_are_decimals():
    p = PostingV1.model_validate(POSTING)
    assert p.amount == Decimal("3000.00") and isinstance(p.balance_after, Decimal)


@pytest.mark.parametrize("field, value, says", [
    ("amount", 3000.0, "decimal string"),
    ("amount", "3000.001", "at most two decimal places"),
    ("amount", "0.00", "greater than zero"),
    ("amount", "1" * 20, "at most two decimal places"),
    ("currency", "USD", "currency"),
    ("posted_at", "2026-11-28T10:15:02", "offset"),
    ("posted_at", "1850-01-01T00:00:00+08:00", "out of range"),
    ("balance_after", "-1.00", "cannot be negative"),
    ("account_seq", 0, "account_seq"),
    ("unexpected", "x", "unexpected"),
])
def test_bad_postings_are_refused_naming_the_field(field, value, says):
    body = {**POSTING, field: value}
    with pytest.raises(ValidationError) as err:
        PostingV1.model_validate(body)
    assert says in str(err.value)


def test_loans_may_have_negative_balances():
    p = PostingV1.model_validate({**POSTING, "product_type": "loan", "balance_after": "-100.00"})
    assert p.balance_after == Decimal("-100.00")


def test_core_customer_needs_name_and_branch_but_other_sources_send_attributes_only():
    with pytest.raises(ValidationError):
        CustomerV1.model_validate({"customer_id": "C1", "updated_at": "2026-11-28T09:00:00+08:00"})
    c = CustomerV1.model_validate({"customer_id": "C1", "source": "social_security",
                                   "attributes": {"insured_months": 120},
                                   "updated_at": "2026-11-28T09:00:00+08:00"})
    assert c.attributes["insured_months"] == 120


def test_binary_mode_round_trip_keeps_id_type_subject_and_data():
    event = new_event(PostingV1.model_validate(POSTING), "core")
    key, value, headers = encode_binary(event)
    h = dict(headers)
    assert key == b"C000123" and h["ce_type"] == b"bank.posting.v1" and h["ce_subject"] == b"C000123"
    assert h["content-type"] == b"application/json"
    assert json.loads(value)["amount"] == "3000.00"
    back = decode_record(value, headers)
    assert (back.id, back.type, back.data) == (event.id, event.type, event.data)


def test_structured_mode_record_is_accepted():
    event = new_event(PostingV1.model_validate(POSTING), "core")
    body = json.dumps(to_structured(event)).encode()
    back = decode_record(body, [("content-type", b"application/cloudevents+json")])
    assert back.id == event.id and back.data.posting_id == "P00000000017"


@pytest.mark.parametrize("body, says", [
    ({"specversion": "1.0", "id": "1", "source": "s", "type": "bank.nope.v1", "data": {}}, "unknown ce_type"),
    ({"specversion": "1.0", "source": "s", "type": "bank.posting.v1", "data": POSTING}, "missing id"),
    ({"specversion": "0.3", "id": "1", "source": "s", "type": "bank.posting.v1", "data": POSTING}, "specversion"),
    ({"specversion": "1.0", "id": "1", "source": "s", "type": "bank.posting.v1"}, "no data"),
    ({"specversion": "1.0", "id": "1", "source": "s", "type": "bank.posting.v1", "subject": "C9",
      "data": POSTING}, "is not the customer_id"),
    ([1, 2], "not a CloudEvent"),
])
def test_invalid_cloudevents_say_what_is_wrong(body, says):
    with pytest.raises(InvalidEvent) as err:
        decode_structured(body)
    assert says in str(err.value)


def test_not_json_and_oversized_records_are_invalid():
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode_record(b"\xff{", [("ce_type", b"bank.posting.v1")])
    with pytest.raises(InvalidEvent, match="exceeds"):
        decode_record(b"x" * 1_000_001, [])


def test_outbound_events_serialise_amounts_as_strings_and_from_as_a_field():
    t = TierChangedV1(customer_id="C1", from_="mass", to="gold", reason="r",
                      effective_at="2026-11-28T10:00:00+08:00", change="upgrade", watch=False,
                      aum="50000.00", basis="50000.00")
    body = json.loads(t.model_dump_json(by_alias=True))
    assert body["from"] == "mass" and body["aum"] == "50000.00"
    fee = FeeAssessedV1(posting_id="P1", customer_id="C1", fee_id=None, tier="gold", base="0.00",
                        waived="0.00", discount="0.00", points_used=0, net="0.00", rules=[],
                        posted_at="2026-11-28T10:00:00+08:00")
    assert json.loads(fee.model_dump_json())["net"] == "0.00"


def test_snapshot_of_an_asset_cannot_be_negative():
    with pytest.raises(ValidationError):
        BalanceV1(customer_id="C1", account_id="A", product_type="fund", balance="-1.00",
                  currency="CNY", as_of="2026-11-28T10:00:00+08:00")


def test_the_facts_tiering_passes_on_carry_the_fields_of_the_contract_models():
    from shared.contracts.events import AccountFact, AccountV1, CustomerFact, CustomerV1, PostingFact

    assert set(PostingFact.model_fields) == set(PostingV1.model_fields)
    assert set(AccountFact.model_fields) == set(AccountV1.model_fields)
    assert set(CustomerFact.model_fields) <= set(CustomerV1.model_fields)
    assert {"id_number", "phone"}.isdisjoint(CustomerFact.model_fields), "identity stays with profile"


def test_a_fact_on_tierings_stream_refuses_an_amount_finer_than_a_cent():
    from shared.contracts.events import TieringChangeV1

    with pytest.raises(ValidationError):
        TieringChangeV1(customer_id="C1", fact="balance", at="2026-11-20T10:00:00+08:00", tier="mass",
                        aum="1.005", aum_before="0.00", business_date="2026-11-20")


@pytest.mark.parametrize("text", ["１２３.00", "١٢٣.٠٠", "१२३.00", " 123.00", "123.00 ", "123.00\n", "\t5.00"])
def test_an_amount_is_ascii_digits_and_nothing_around_them(text):
    from shared.money import MoneyError, parse_money

    with pytest.raises(MoneyError, match="not an amount"):
        parse_money(text)


def test_an_inbound_amount_or_balance_above_the_limit_is_refused_and_the_limit_is_configuration():
    from shared.money import max_amount, set_max_amount

    good = PostingV1.model_validate(POSTING)
    assert max_amount() == Decimal("1000000000000.00")
    for field, value in (("amount", "1000000000000.01"), ("balance_after", "1000000000000.01"),
                         ("balance_after", "-1000000000000.01")):
        data = {**good.model_dump(by_alias=True, mode="json"), "product_type": "loan", field: value}
        with pytest.raises(ValueError, match="above the largest amount accepted"):
            PostingV1.model_validate(data)
    PostingV1.model_validate({**good.model_dump(mode="json"), "amount": "1000000000000.00",
                              "balance_after": "1000000000000.00"})
    with pytest.raises(ValueError, match="above the largest amount"):
        BalanceV1(customer_id="C1", account_id="A1", product_type="fund", balance="1000000000000.01",
                  currency="CNY", as_of="2026-11-28T15:00:00+08:00")
    try:
        set_max_amount(Decimal("5000000.00"))
        with pytest.raises(ValueError, match="5000000.00"):
            PostingV1.model_validate({**good.model_dump(mode="json"), "amount": "5000000.01"})
    finally:
        set_max_amount(Decimal("1000000000000.00"))


def test_an_event_built_without_validation_serializes_as_the_model_would():
    from datetime import date
    from decimal import Decimal

    from shared.contracts.events import AumV1, PostingFact, TierChange, TieringChangeV1, built

    posting = PostingV1.model_validate(POSTING)
    decision = dict(from_="mass", to="gold", change="upgrade", reason="r", effective_at=posting.posted_at,
                    watch=False, months_below=0, basis=Decimal("50000.00"))
    values = dict(customer_id=posting.customer_id, fact="posting", at=posting.posted_at, tier="gold", watch=False,
                  months_below=0, aum=Decimal("50000.00"), aum_before=Decimal("1.00"),
                  average_aum_12m=Decimal("0.00"), business_date=date(2026, 11, 28), placement=False, stale=False,
                  customer=None, account=None)
    fast = built(TieringChangeV1, **values, posting=built(PostingFact, **posting.__dict__),
                 tier_changes=[built(TierChange, **decision)])
    slow = TieringChangeV1(**values, posting=PostingFact(**dict(posting)), tier_changes=[TierChange(**decision)])
    assert fast.model_dump_json() == slow.model_dump_json()
    aum = dict(customer_id="C1", aum=Decimal("1.00"), mtd_average_daily_aum=Decimal("1.00"), by_product_type={},
               liabilities={}, business_date=date(2026, 11, 28), as_of=posting.posted_at, tier="mass",
               placement=True, balances={"A1": Decimal("1.00")}, changed_at=posting.posted_at)
    assert built(AumV1, **aum).model_dump_json() == AumV1(**aum).model_dump_json()
    with pytest.raises(KeyError):
        built(AumV1, customer_id="C1")  # every field must be given
