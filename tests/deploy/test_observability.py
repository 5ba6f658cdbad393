"""The Grafana dashboards and Prometheus rules are true to the code and to Prometheus.

- promtool (Debian's `prometheus` package; scripts/test installs it) accepts the rules and
  the config, parses every dashboard query, and the rules' unit tests prove the alerts fire;
- every metric a dashboard or a rule reads is one the code registers, with the labels the
  query groups or filters by;
- the dashboards are Grafana JSON on the provisioned datasource, one target at least per panel.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from promql_names import label_names, metric_names, registered_metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DATASOURCE_UID = "prometheus"
SEVERITIES = {"critical", "warning", "info"}
# What Grafana substitutes for its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$service": ".*"}


# ---------------------------------------------------------------- helpers


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = ("promtool not found: install Debian's `prometheus` package "
                   "(apt-get install -y prometheus; scripts/test does it when it runs as root)")
        if os.environ.get("STRATA_REQUIRE_INTEGRATION") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


def _board(path: Path) -> dict:
    return json.loads(path.read_text())


def _panels(board: dict) -> list[dict]:
    """Every panel, those nested in collapsed rows included."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _variable_query(variable: dict) -> str:
    query = variable.get("query", "")
    return query.get("query", "") if isinstance(query, dict) else str(query)


def _dashboard_expressions(board: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable of a dashboard."""
    found = []
    for panel in _panels(board):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((f"{board['uid']}: panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            found.append((f"{board['uid']}: variable {variable['name']}", _variable_query(variable)))
    return found


def _all_expressions() -> list[tuple[str, str]]:
    found = [(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]) for rule in _rules()]
    for path in DASHBOARDS:
        found.extend(_dashboard_expressions(_board(path)))
    return found


def _as_promql(expr: str) -> str:
    """A dashboard query as Prometheus receives it; label_values() is Grafana's, not PromQL."""
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    match = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", expr)
    return match.group(1) if match else expr


def _target_labels() -> set[str]:
    """Labels Prometheus attaches to every sample it scrapes from a Strata process."""
    labels = {"job", "instance"}
    for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]:
        for static in job.get("static_configs", []):
            labels.update(static.get("labels", {}))
    return labels


@pytest.fixture(scope="module")
def registered() -> dict[str, set[str]]:
    return registered_metrics()


# ---------------------------------------------------------------- promtool


def test_found_the_rules_tests_and_dashboards() -> None:
    assert [p.name for p in RULE_FILES] == ["strata.yml"]
    assert RULE_TESTS
    assert {p.name for p in DASHBOARDS} == {"strata-operations.json", "strata-business.json"}


def test_promtool_accepts_the_alerting_rules() -> None:
    result = _run_promtool("check", "rules", *[str(p.relative_to(ROOT)) for p in RULE_FILES])
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_config_and_the_rules_it_loads(tmp_path: Path) -> None:
    _run_promtool("check", "config", str(CONFIG.relative_to(ROOT)))
    # The config names the rules where the container mounts them (/etc/prometheus/rules);
    # point a copy at this checkout so that promtool loads and checks them through the config.
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = _run_promtool("check", "config", str(copy))
    out = result.stdout + result.stderr
    assert f"{len(_rules())} rules found" in out, out


def test_alerts_fire_in_promtool_unit_tests() -> None:
    result = _run_promtool("test", "rules", *[str(p.relative_to(ROOT)) for p in RULE_TESTS])
    assert "SUCCESS" in result.stdout + result.stderr
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested.update(t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts"))
    assert {"StrataServiceDown", "StrataDeadLetters", "StrataConsumerLagHigh", "StrataOutboxBacklogGrowing",
            "StrataHttpServerErrors"} <= tested


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    rules = [{"record": f"strata:dashboard_query:{i}", "expr": _as_promql(expr)}
             for i, (_, expr) in enumerate(_all_expressions())]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run_promtool("check", "rules", str(path))
    assert f"{len(rules)} rules found" in result.stdout + result.stderr


# ---------------------------------------------------------------- names


def test_the_name_reader_finds_metrics_and_ignores_strings_labels_and_variables() -> None:
    expr = ('histogram_quantile(0.99, sum by (service, le) (rate(strata_handler_duration_seconds_bucket'
            '{service=~"$service", reason="strata_not_a_metric up"}[$__rate_interval])))'
            ' or on (service) up{job="strata"} == 0 unless changes(process_start_time_seconds[30m] offset 10m) > 2')
    assert metric_names(expr) == {"strata_handler_duration_seconds_bucket", "up", "process_start_time_seconds"}
    assert label_names(expr) == {"service", "le", "reason", "job"}


def test_the_name_check_would_report_an_unknown_metric(registered) -> None:
    used = metric_names('sum(rate(strata_events_consumed[5m])) + strata_events_consumed_total')
    assert used - set(registered) == {"strata_events_consumed"}


def test_registered_names_carry_the_exposition_suffixes(registered) -> None:
    for name in ("strata_events_consumed_total", "strata_handler_duration_seconds_bucket",
                 "strata_handler_duration_seconds_count", "strata_handler_duration_seconds_sum",
                 "strata_consumer_lag", "strata_tier_changes_total", "process_start_time_seconds", "up"):
        assert name in registered
    assert "strata_events_consumed" not in registered
    assert registered["strata_handler_duration_seconds_bucket"] >= {"service", "topic", "le"}


def test_every_metric_used_by_a_dashboard_or_rule_exists_in_the_code(registered) -> None:
    unknown: dict[str, list[str]] = {}
    for where, expr in _all_expressions():
        for name in sorted(metric_names(expr) - set(registered)):
            unknown.setdefault(name, []).append(where)
    assert not unknown, "metrics no code registers:\n" + "\n".join(
        f"  {name}: {', '.join(places)}" for name, places in sorted(unknown.items()))


def test_every_label_a_query_uses_belongs_to_its_metrics(registered) -> None:
    """`by (signal_type)` on a metric labelled `type` would draw one unlabelled line."""
    targets = _target_labels()
    wrong = []
    for where, expr in _all_expressions():
        names = metric_names(expr) & set(registered)
        if not names:
            continue
        known = targets.union(*(registered[n] for n in names))
        for label in sorted(label_names(expr) - known):
            wrong.append(f"  {where}: label {label!r} not on {sorted(names)}")
    assert not wrong, "labels the metrics do not have:\n" + "\n".join(wrong)


# ---------------------------------------------------------------- alerting rules


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in _alerts():
        assert alert.get("labels", {}).get("severity") in SEVERITIES, alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), alert["alert"]
        assert annotations.get("description", "").strip(), alert["alert"]


@pytest.mark.parametrize(("concern", "metric"), [
    ("a service down", "up"),
    ("consumer lag", "strata_consumer_lag"),
    ("dead letters", "strata_events_dead_lettered_total"),
    ("outbox backlog", "strata_outbox_backlog"),
    ("retries", "strata_retries_total"),
    ("API server errors", "strata_http_requests_total"),
])
def test_an_alert_watches(concern: str, metric: str) -> None:
    assert any(metric in metric_names(a["expr"]) for a in _alerts()), f"no alert on {concern}"


def test_the_down_alert_is_up_equals_zero() -> None:
    [down] = [a for a in _alerts() if a["alert"] == "StrataServiceDown"]
    assert re.fullmatch(r'up\{job="strata"\}\s*==\s*0', down["expr"].strip())


# ---------------------------------------------------------------- dashboards


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_grafana_json_on_the_provisioned_datasource(path: Path) -> None:
    board = _board(path)
    assert board["uid"] == path.stem and board["title"]
    assert isinstance(board.get("schemaVersion"), int)
    panels = _panels(board)
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}: {sorted(ids)}"
    for panel in panels:
        title = panel.get("title")
        assert title, f"untitled panel {panel['id']}"
        assert panel["datasource"]["uid"] == DATASOURCE_UID, title
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        targets = panel.get("targets", [])
        assert targets, f"panel {title!r} has no target"
        for target in targets:
            assert target.get("expr", "").strip(), title
            assert target.get("datasource", panel["datasource"])["uid"] == DATASOURCE_UID, title
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]


def _metrics_of(uid: str) -> set[str]:
    board = _board(ROOT / "deploy" / "grafana" / "dashboards" / f"{uid}.json")
    return set().union(*(metric_names(expr) for _, expr in _dashboard_expressions(board)))


def test_operations_dashboard_is_per_service_and_shows_the_runtime() -> None:
    board = _board(ROOT / "deploy" / "grafana" / "dashboards" / "strata-operations.json")
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "service"]
    assert _variable_query(variable) == "label_values(strata_events_consumed_total, service)"
    assert variable.get("includeAll") and variable.get("multi")
    for _, expr in _dashboard_expressions(board):
        if "$service" not in expr and "label_values" not in expr:
            pytest.fail(f"query not filtered by $service: {expr}")
    assert _metrics_of("strata-operations") >= {
        "up", "strata_events_consumed_total", "strata_events_emitted_total",
        "strata_handler_duration_seconds_bucket", "strata_batch_duration_seconds_bucket",
        "strata_consumer_lag", "strata_events_dead_lettered_total", "strata_events_duplicate_total",
        "strata_retries_total", "strata_outbox_backlog", "strata_http_events_accepted_total",
        "strata_http_events_refused_total", "strata_http_requests_total",
        "strata_http_request_duration_seconds_bucket", "strata_events_unknown_reference_total",
        "strata_events_late_total",
    }


def test_business_dashboard_shows_tiers_signals_fees_points_assignments_and_segments() -> None:
    assert _metrics_of("strata-business") >= {
        "strata_customers_by_tier", "strata_aum_by_tier_cny", "strata_tier_changes_total",
        "strata_customers_on_watch", "strata_signals_raised_total", "strata_fees_charged_cny_total",
        "strata_fees_waived_cny_total", "strata_points_earned_total", "strata_points_spent_total",
        "strata_assignment_changes_total", "strata_assignment_unassigned_customers",
        "strata_profile_segment_query_seconds_bucket",
    }
