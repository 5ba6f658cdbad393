"""One typed settings model for every service.

Read in this order, later winning: the defaults shipped in ``shared/config/defaults.yaml`` (the
rules of docs/RULES.md), the bank's YAML file named by ``STRATA_CONFIG`` (merged key by key), then
environment variables ``STRATA_<FIELD>`` with ``__`` between nested names, e.g.
``STRATA_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`` or ``STRATA_AUTH__SECRET=...``.
"""

from __future__ import annotations

import functools
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.settings.assignment import AssignmentSettings
from shared.settings.pricing import PricingSettings
from shared.settings.profile import ProfileSettings
from shared.settings.signals import SignalSettings
from shared.settings.tiers import TieringSettings, TierRule, check_tier_order
from shared.settings.workbench import WorkbenchSettings

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "defaults.yaml"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    group_prefix: str = "strata"
    topic_prefix: str = ""
    """Prepended to every topic name on the broker, so several environments can share one
    cluster (``uat.bank.postings``); the code always speaks of the logical names."""
    client_id: str = "strata"
    session_timeout_ms: int = Field(default=15_000, ge=1_000)
    """How long the group coordinator waits for a silent consumer before it hands the consumer's
    partitions to the others: shorter moves a dead instance's work sooner, longer tolerates
    longer pauses (GC, a slow database) without a rebalance."""
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    """The longest a batch (its handlers and database transaction) may take before the consumer
    is considered stuck and leaves the group."""

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> "KafkaSettings":
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("kafka.heartbeat_interval_ms must be at most a third of kafka.session_timeout_ms")
        return self


class RuntimeSettings(BaseModel):
    batch_size: int = Field(default=2000, ge=1)
    poll_timeout_ms: int = Field(default=100, ge=1)
    outbox_batch_size: int = Field(default=1000, ge=1)
    outbox_poll_interval_ms: int = Field(default=200, ge=10)
    retry_initial_ms: int = 200
    retry_max_ms: int = 10_000
    lag_interval_s: float = 5.0
    business_gauges_interval_s: float = Field(default=60.0, gt=0)
    """How often the business gauges (customers and AUM by tier, open signals, RM books) are
    counted. Each count is a scan of the service's customers, so at a million customers it
    costs a core for a fraction of a second: once a minute is plenty for a dashboard."""
    gc_young_threshold: int = Field(default=50_000, ge=0)
    """Allocations between collections of Python's youngest generation in a Strata process
    (``gc.set_threshold``; 0 keeps Python's 700). A batch allocates hundreds of thousands of
    short-lived objects; at 700 the collector ran thousands of times a second and took a
    quarter of a consumer's CPU. The objects loaded at start-up are frozen out of it too."""
    max_lateness_s: float = Field(default=1.0, ge=0)
    """How long a service that reads several topics in event-time order (tiering) waits for a
    quiet topic before applying what the others brought past it (``shared.runtime.order``).
    A topic with records on the broker not yet fetched is always waited for; this bounds the
    wait for records not yet published, for a core bank that sends one topic behind the
    others (a nightly balance file, say). Assignment, which orders tiering's stream across
    every partition, waits twice this: tiering may already have held one partition that long.
    A fact that arrives later than this behind a later
    fact of its customer is late: applied by the rules for facts out of order, and counted.
    1 s by default: core banking (and ``strata simulate``) publishes one instant's facts (a
    day's master data, thousands of records at one time) in several produce requests, and a
    fetch between two of them would otherwise apply a snapshot before the customer record of
    its instant, so two runs of one feed could end apart. The cost is latency: while a topic is
    quiet, a posting waits up to this long (``bench/`` measures it). 0, as Kafka Streams'
    max.task.idle.ms: never wait for what is not published yet, and accept that facts
    published in separate requests follow their arrival."""
    stream_wait_s: float = Field(default=2.0, ge=0)
    """How long a service that orders a stream another Strata service writes (assignment, over
    tiering's stream, across every partition) waits for a quiet partition of it, on top of the
    bound above. Tiering writes its partitions in turns, batch by batch, so one partition's
    records may reach the stream a moment after another's of later facts; waiting this long
    puts customers in one order across partitions whatever the batching (balanced distribution
    depends on that order), and costs assignment's decisions this much delay when the stream
    goes quiet. 0: decide in the order the stream arrives."""
    dedupe_retention_days: int = Field(default=30, ge=1)
    """How long processed event ids are remembered. Keep it longer than the Kafka retention of
    every topic a service reads (7 days by default), so any redelivery is still recognised."""


class AuthSettings(BaseModel):
    secret: SecretStr = SecretStr("strata-development-key-change-me")
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    issuer: str = "strata"
    token_ttl_minutes: int = 12 * 60
    unmasked_roles: list[str] = ["admin"]


class LimitsSettings(BaseModel):
    max_amount: Decimal = Field(default=Decimal("1000000000000.00"), gt=0, le=Decimal("10000000000000"))
    """The largest amount or balance Strata accepts from outside, in CNY (10^12 by default):
    an inbound posting's ``amount`` or ``balance_after``, a snapshot's ``balance`` beyond it is
    dead-lettered, and a money input over HTTP beyond it is refused (422). Past any customer's
    holdings, it keeps sums of balances far from the database's 64-bit integers."""


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_", env_nested_delimiter="__", extra="forbid")

    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    bus: Literal["kafka", "memory"] = "kafka"
    database_url: str = "postgresql+asyncpg://strata:strata@127.0.0.1:55432/strata"
    database_pool_size: int = 10
    kafka: KafkaSettings = KafkaSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    auth: AuthSettings = AuthSettings()
    http: HttpSettings = HttpSettings()
    limits: LimitsSettings = LimitsSettings()
    log_level: str = "INFO"

    tiers: list[TierRule]
    tiering: TieringSettings = TieringSettings()
    signals: SignalSettings = SignalSettings()
    pricing: PricingSettings
    assignment: AssignmentSettings = AssignmentSettings()
    profile: ProfileSettings = ProfileSettings()
    workbench: WorkbenchSettings = WorkbenchSettings()

    @field_validator("tiers")
    @classmethod
    def _tiers_ordered(cls, tiers: list[TierRule]) -> list[TierRule]:
        return check_tier_order(tiers)

    @model_validator(mode="after")
    def _tier_references_exist(self) -> "Settings":
        """Every tier id named anywhere (signals, pricing, assignment) must be a configured tier,
        so a typo fails at start-up, not as dead letters at run time."""
        known = {t.id for t in self.tiers}
        named = {
            "signals.vip_outflow.min_tier": {self.signals.vip_outflow.min_tier},
            "signals.birthday.min_tier": {self.signals.birthday.min_tier},
            "signals.priority.by_tier": set(self.signals.priority.by_tier),
            "pricing": self.pricing.tier_ids_named(),
            "assignment.primary_levels": set(self.assignment.primary_levels),
            "assignment.weights": set(self.assignment.weights),
        }
        for where, ids in named.items():
            unknown = sorted(ids - known)
            if unknown:
                raise ValueError(f"{where} names unknown tier(s) {unknown}; tiers are {sorted(known)}")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        ZoneInfo(name)
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @functools.cached_property
    def tier_ladder(self):
        """The tier table as every service's rules use it (``shared.tiers.TierLadder``), built
        once per settings object."""
        from shared.tiers import TierLadder

        return TierLadder.from_rules(self.tiers)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _YamlFiles(settings_cls))


class _YamlFiles(PydanticBaseSettingsSource):
    """The shipped defaults merged with the bank's file named by ``STRATA_CONFIG``."""

    def get_field_value(self, field, field_name):  # pragma: no cover - whole-dict source
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged = _read_yaml(DEFAULTS_FILE)
        override = os.environ.get("STRATA_CONFIG")
        if override:
            merged = deep_merge(merged, _read_yaml(Path(override)))
        return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and values in ``override`` replace those in ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
