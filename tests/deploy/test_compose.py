"""Static checks of the Docker deployment files (no Docker or network needed).

docker-compose.yml, the nginx gateway config, Prometheus and Grafana
provisioning are only exercised on machines with a Docker engine; these tests
catch the mistakes that would otherwise surface there first: a service wired
to the wrong port or env, a path routed to the wrong upstream (nginx regex
locations are order-sensitive), a service missing from scraping.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "gateway" / "nginx.conf"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"

SERVICES = {"profile": 8001, "tiering": 8002, "alerts": 8003, "pricing": 8004, "assignment": 8005}
SERVICE_ENV = {
    "STRATA_DATABASE_URL": "postgresql+asyncpg://strata:strata@postgres:5432/strata",
    "STRATA_BUS": "kafka",
    "STRATA_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
    "STRATA_AUTH__SECRET": "${STRATA_AUTH_SECRET:-change-me-in-production}",
    "STRATA_HTTP__PORT": "8000",
    # uvicorn must listen on all interfaces inside the container, or the
    # gateway and Prometheus cannot reach it (the app's default is 127.0.0.1).
    "STRATA_HTTP__HOST": "0.0.0.0",
}

# (path, owning service); None = the gateway answers 404 itself.
ROUTES = [
    ("/v1/customers/C1/tier", "tiering"),
    ("/v1/customers/C-00042/tier", "tiering"),
    ("/v1/admin/month-end-close", "tiering"),
    ("/v1/customers/C1/tier/explain", "tiering"),
    ("/v1/customers/C1/aum/daily", "tiering"),
    ("/v1/tiering/simulate", "tiering"),
    ("/v1/tiering/simulations/S1", "tiering"),
    ("/v1/tiering/simulations/S1/customers", "tiering"),
    ("/v1/tieringx", None),
    ("/v1/customers/C1/fees", "pricing"),
    ("/v1/customers/C1/eligible-products", "pricing"),
    ("/v1/customers/C1/points", "pricing"),
    ("/v1/customers/C1/points/ledger", "pricing"),
    ("/v1/customers/C1/fees/P-1/explain", "pricing"),
    ("/v1/pricing/quote", "pricing"),
    ("/v1/pricing/products/P1/fees", "pricing"),
    ("/v1/signals", "alerts"),
    ("/v1/signals/5/ack", "alerts"),
    ("/v1/admin/daily-scan", "alerts"),
    ("/v1/rms", "assignment"),
    ("/v1/rms/R1/worklist", "assignment"),
    ("/v1/assignments/A1", "assignment"),
    ("/v1/assignments/A1/complete", "assignment"),
    ("/v1/customers/C1/follow-ups", "assignment"),
    ("/v1/customers/C1/assignments", "assignment"),
    ("/v1/customers/C1", "profile"),
    ("/v1/customers/C1/", "profile"),
    ("/v1/customers/C1/accounts", "profile"),
    ("/v1/customers/C1/timeline", "profile"),
    ("/v1/customers/C1/tierx", "profile"),
    ("/v1/customers", "profile"),
    ("/v1/segments", "profile"),
    ("/v1/audit", "profile"),
    ("/v1/segments/S1/members", "profile"),
    ("/v1/branches/B1/customers", "profile"),
    ("/v1/events", "profile"),
    ("/v1/clock", "profile"),
    ("/docs", "profile"),
    ("/docs/oauth2-redirect", "profile"),
    ("/openapi.json", "profile"),
    ("/healthz", "profile"),
    ("/", "workbench"),
    ("/app", "workbench"),
    ("/app/home", "workbench"),
    ("/app/customers/C1", "workbench"),
    ("/app/static/vendor/htmx-2.0.11.min.js", "workbench"),
    ("/application", None),
    ("/v1/app", None),
    ("/metrics", None),
    ("/v1/unknown", None),
    ("/v1/admin/other", None),
]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# ---------------------------------------------------------------- compose


def _host_port(mapping: str | dict) -> tuple[int, int]:
    if isinstance(mapping, dict):  # long syntax
        return int(mapping["published"]), int(mapping["target"])
    parts = str(mapping).split(":")
    return int(parts[-2]), int(parts[-1].split("/")[0])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_definition(compose: dict, name: str) -> None:
    svc = compose["services"][name]
    assert svc["command"] == ["serve", name]
    assert "build" in svc
    assert [_host_port(p) for p in svc["ports"]] == [(SERVICES[name], 8000)]
    for p in svc["ports"]:
        assert str(p).startswith("127.0.0.1:"), "publish on loopback only"
    env = svc["environment"]
    assert isinstance(env, dict)
    for key, value in SERVICE_ENV.items():
        assert str(env.get(key)) == value, key
    deps = svc["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"
    test = " ".join(svc["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in test and "urllib" in test


def test_workbench_definition(compose: dict) -> None:
    """Its own small process: the API through the gateway, no bus, no database."""
    svc = compose["services"]["workbench"]
    assert svc["command"] == ["serve", "workbench"]
    assert "build" in svc and svc["image"] == "strata:local"
    assert [_host_port(p) for p in svc["ports"]] == [(8006, 8000)]
    assert all(str(p).startswith("127.0.0.1:") for p in svc["ports"])
    env = svc["environment"]
    assert env["STRATA_WORKBENCH__API_URL"] == "http://gateway"
    assert env["STRATA_HTTP__HOST"] == "0.0.0.0" and str(env["STRATA_HTTP__PORT"]) == "8000"
    assert not {"STRATA_DATABASE_URL", "STRATA_KAFKA__BOOTSTRAP_SERVERS", "STRATA_BUS"} & set(env)
    assert "depends_on" not in svc, "it starts without the bus and the database"
    test = " ".join(svc["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in test


def test_infrastructure_services(compose: dict) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    kenv = kafka["environment"]
    assert kenv["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kenv["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert int(kenv[key]) == 1, key
    assert "/opt/kafka/bin/kafka-topics.sh" in " ".join(kafka["healthcheck"]["test"])

    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert {pg["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")} == {"strata"}
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(str(v).startswith("pgdata:") for v in pg["volumes"])
    assert "pgdata" in compose["volumes"]

    gw = services["gateway"]
    assert gw["image"] == "nginx:1.27-alpine"
    assert [_host_port(p)[0] for p in gw["ports"]] == [8000]
    assert any("deploy/gateway/nginx.conf" in v for v in gw["volumes"])
    assert set(gw["depends_on"]) == set(SERVICES) | {"workbench"}

    prom = services["prometheus"]
    assert prom["image"].startswith("prom/prometheus")
    assert any(v.startswith("./deploy/prometheus:") for v in prom["volumes"])

    graf = services["grafana"]
    assert graf["image"].startswith("grafana/grafana")
    assert [_host_port(p)[0] for p in graf["ports"]] == [3000]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in graf["volumes"] if v.startswith("./")}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == "./deploy/grafana/dashboards"


def test_every_bind_mount_exists(compose: dict) -> None:
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src = str(vol).split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: {src} missing"


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "pip install --no-cache-dir ." in text
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert 'ENTRYPOINT ["strata"]' in text
    assert 'CMD ["serve", "tiering"]' in text
    assert re.search(r"^EXPOSE 8000", text, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".run", "deploy/kafka/libs", ".git", "bench/results"):
        assert entry in ignored


# ---------------------------------------------------------------- prometheus


def test_prometheus_scrapes_exactly_the_five_services() -> None:
    cfg = yaml.safe_load(PROMETHEUS.read_text())
    assert "/etc/prometheus/rules/*.yml" in cfg["rule_files"]
    seen = {}
    for job in cfg["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                seen[target] = sc["labels"]["service"]
    assert seen == {f"{name}:8000": name for name in SERVICES}
    assert cfg["global"]["scrape_interval"] == "5s"


def test_prometheus_rule_files_parse() -> None:
    for path in sorted((PROMETHEUS.parent / "rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        assert isinstance(doc.get("groups"), list), path.name


# ---------------------------------------------------------------- grafana


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [prom] = [d for d in ds["datasources"] if d["type"] == "prometheus"]
    assert prom["uid"] == "prometheus"
    assert prom["url"] == "http://prometheus:9090"
    dash = yaml.safe_load((GRAFANA / "provisioning/dashboards/strata.yml").read_text())
    [provider] = dash["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (GRAFANA / "dashboards").is_dir()


def test_grafana_dashboards_are_json_using_the_provisioned_datasource() -> None:
    import json

    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board.get("title"), path.name
        assert board.get("uid"), path.name
        text = path.read_text()
        for m in re.finditer(r'"datasource"\s*:\s*\{[^}]*"uid"\s*:\s*"([^"]+)"', text):
            assert m.group(1) in ("prometheus", "${DS_PROMETHEUS}", "-- Grafana --", "grafana"), path.name


# ---------------------------------------------------------------- gateway


def _strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        in_quote = None
        for i, ch in enumerate(line):
            if ch in "'\"" and (i == 0 or line[i - 1] != "\\"):
                in_quote = None if in_quote == ch else (in_quote or ch)
            elif ch == "#" and in_quote is None:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _locations(text: str) -> list[dict]:
    """Location blocks of nginx.conf in file order: modifier, pattern, body."""
    text = _strip_comments(text)
    found = []
    for m in re.finditer(r"\blocation\s+(?:(=|~\*|~|\^~)\s+)?(\S+)\s*\{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found.append({"mod": m.group(1) or "", "pattern": m.group(2), "body": text[m.end():i - 1]})
    return found


def _upstreams(text: str) -> dict[str, str]:
    """upstream name -> host of its (single) server."""
    text = _strip_comments(text)
    ups = {}
    for m in re.finditer(r"\bupstream\s+(\S+)\s*\{([^}]*)\}", text):
        server = re.search(r"\bserver\s+([^:;\s]+)", m.group(2))
        ups[m.group(1)] = server.group(1)
    return ups


def _route(locations: list[dict], upstreams: dict[str, str], path: str) -> str | None:
    """Apply nginx's location selection: exact, then longest prefix (stop on ^~),
    then regexes in file order, else the longest prefix."""
    chosen = None
    for loc in locations:
        if loc["mod"] == "=" and loc["pattern"] == path:
            chosen = loc
            break
    if chosen is None:
        prefixes = [loc for loc in locations if loc["mod"] in ("", "^~") and path.startswith(loc["pattern"])]
        best = max(prefixes, key=lambda loc: len(loc["pattern"]), default=None)
        if best is not None and best["mod"] == "^~":
            chosen = best
        else:
            for loc in locations:
                if loc["mod"] in ("~", "~*"):
                    flags = re.I if loc["mod"] == "~*" else 0
                    if re.search(loc["pattern"], path, flags):
                        chosen = loc
                        break
            chosen = chosen or best
    assert chosen is not None, f"no location matches {path}"
    proxy = re.search(r"\bproxy_pass\s+http://([^/;:\s]+)", chosen["body"])
    if proxy is None:
        assert re.search(r"\breturn\s+404\b", chosen["body"]), chosen
        return None
    return upstreams.get(proxy.group(1), proxy.group(1))


@pytest.fixture(scope="module")
def nginx() -> tuple[list[dict], dict[str, str]]:
    text = NGINX.read_text()
    return _locations(text), _upstreams(text)


def test_upstreams_are_the_services_and_the_workbench(nginx) -> None:
    _, ups = nginx
    assert set(ups.values()) == set(SERVICES) | {"workbench"}


@pytest.mark.parametrize(("path", "owner"), ROUTES)
def test_gateway_routes(nginx, path: str, owner: str | None) -> None:
    locations, ups = nginx
    assert _route(locations, ups, path) == owner


def test_route_parser_honours_nginx_order() -> None:
    """The replay itself: first matching regex wins, exact match beats regexes."""
    conf = """
    location / { return 404; }
    location ~ ^/a { proxy_pass http://first; }
    location ~ ^/a/b { proxy_pass http://second; }
    location = /a/b/c { proxy_pass http://exact; }
    """
    locs = _locations(conf)
    assert _route(locs, {}, "/a/b") == "first"
    assert _route(locs, {}, "/a/b/c") == "exact"
    assert _route(locs, {}, "/z") is None
