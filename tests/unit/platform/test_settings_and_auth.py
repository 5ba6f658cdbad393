"""Settings layering and bearer tokens."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import jwt
import pytest

from shared.auth import decode_token, issue_token, mask_id_number, mask_phone
from shared.problems import Problem
from shared.settings import Settings

KEY = "a-test-signing-key-of-32-bytes!!"


def test_defaults_carry_the_domain_rules():
    s = Settings()
    assert [t.id for t in s.tiers] == ["mass", "gold", "platinum", "diamond", "private"]
    assert s.tiers[-1].downgrade_after_months == 6 and s.tiers[2].floor == Decimal("200000.00")
    assert {f.id for f in s.pricing.fees} >= {"atm_interbank", "sms_monthly", "card_annual", "small_account"}
    assert s.timezone == "Asia/Shanghai"


def test_bank_file_merges_over_defaults_and_environment_wins(tmp_path, monkeypatch):
    bank = tmp_path / "bank.yaml"
    bank.write_text("tiering: {household_aggregation: true}\nkafka: {partitions: 12}\n")
    monkeypatch.setenv("STRATA_CONFIG", str(bank))
    monkeypatch.setenv("STRATA_KAFKA__PARTITIONS", "24")
    s = Settings()
    assert s.tiering.household_aggregation is True
    assert s.kafka.partitions == 24
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092", "unset keys keep their defaults"


def test_tiers_out_of_order_are_refused(tmp_path, monkeypatch):
    bank = tmp_path / "bank.yaml"
    bank.write_text("tiers:\n - {id: a, name: a, floor: '0.00'}\n - {id: b, name: b, floor: '0.00'}\n")
    monkeypatch.setenv("STRATA_CONFIG", str(bank))
    with pytest.raises(ValueError, match="distinct floors"):
        Settings()


def test_secret_never_prints():
    s = Settings()
    assert "strata-development-key" not in repr(s) and "strata-development-key" not in str(s.auth)


def test_token_round_trip_carries_role_and_ids():
    token = issue_token(KEY, "rm", rm_id="RM-1")
    p = decode_token(token, KEY)
    assert (p.role, p.rm_id, p.branch_id) == ("rm", "RM-1", None)


@pytest.mark.parametrize("make, says", [
    (lambda: issue_token("another-signing-key-of-32-bytes!!", "admin"), "not valid"),
    (lambda: issue_token(KEY, "admin", ttl_minutes=-1), "expired"),
    (lambda: jwt.encode({"role": "root", "sub": "x", "iss": "strata",
                         "iat": datetime.now(timezone.utc),
                         "exp": datetime.now(timezone.utc) + timedelta(minutes=5)}, KEY), "no known role"),
    (lambda: "not-a-jwt", "not valid"),
])
def test_bad_tokens_are_401(make, says):
    with pytest.raises(Problem) as err:
        decode_token(make(), KEY)
    assert err.value.status == 401
    assert says in f"{err.value.title} {err.value.detail}".lower()


def test_rm_token_needs_an_rm_id():
    with pytest.raises(ValueError):
        issue_token(KEY, "rm")


def test_masks_keep_only_the_ends():
    assert mask_id_number("360102198807150023") == "3601**********0023"
    assert mask_phone("13800000000") == "138****0000"
    assert mask_phone(None) is None


def test_a_tier_id_that_does_not_exist_fails_at_start_up(tmp_path, monkeypatch):
    bank = tmp_path / "bank.yaml"
    bank.write_text("signals: {vip_outflow: {min_tier: platnium}}\n")
    monkeypatch.setenv("STRATA_CONFIG", str(bank))
    with pytest.raises(ValueError, match="platnium"):
        Settings()
