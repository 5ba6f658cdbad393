"""Just enough PromQL reading for the observability tests: which metrics and which labels an
expression uses, and the exposition names the code registers. Not a parser: string literals,
Grafana variables, label matchers and grouping clauses are cut out, and what is left is
scanned for metric names."""
from __future__ import annotations

import importlib
import re

# Metrics a Strata process exports: its own (strata_...) and prometheus_client's default
# process and Python collectors; `up` is written by Prometheus for every scrape target.
METRIC_PREFIXES = ("strata_", "process_", "python_")
SYNTHETIC = {"up"}

_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")

# The suffixes of the samples each metric type exposes (prometheus_client's text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
_EXTRA_LABELS = {"histogram": {"le"}, "gaugehistogram": {"le"}, "summary": {"quantile"}}


def _clean(expr: str) -> str:
    """The expression with Grafana variables made neutral and string literals emptied."""
    expr = _GRAFANA_VAR.sub("5m", expr)
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (only the families Strata can export, plus `up`)."""
    text = _SELECTOR.sub(" ", _GROUPING.sub(" ", _clean(expr)))
    return {name for name in _IDENT.findall(text)
            if name.startswith(METRIC_PREFIXES) or name in SYNTHETIC}


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = _clean(expr)
    found: set[str] = set()
    for selector in _SELECTOR.findall(text):
        found.update(_MATCHER_LABEL.findall(selector))
    for group in _GROUPING.findall(text):
        found.update(label.strip() for label in group.split(",") if label.strip())
    return found


def registered_metrics() -> dict[str, set[str]]:
    """Every sample name the code can expose -> its label names.

    Imports every service the way a process does (strata.registry.load_all()) and every
    metrics module, then reads prometheus_client's default registry."""
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    from strata import registry

    registry.load_all()
    modules = [importlib.import_module("shared.metrics")]
    for name in registry.SERVICE_NAMES:
        try:
            modules.append(importlib.import_module(f"services.{name}.metrics"))
        except ModuleNotFoundError:
            continue

    labels_of: dict[str, tuple[str, ...]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                labels_of[value._name] = tuple(value._labelnames)

    names: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        own = set(labels_of.get(family.name, ()))
        for sample in family.samples:
            own.update(sample.labels)
        for suffix in _SUFFIXES.get(family.type, ("",)):
            extra = _EXTRA_LABELS.get(family.type, set()) if suffix in ("_bucket", "") else set()
            names[family.name + suffix] = own | extra
    for name in SYNTHETIC:
        names[name] = set()
    return names
