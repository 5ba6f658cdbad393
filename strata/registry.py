"""The services Strata has, in the order a single process starts them."""

from __future__ import annotations

import importlib

from shared.runtime.service import ServiceSpec

SERVICE_NAMES = ("profile", "tiering", "alerts", "pricing", "assignment")


def available() -> list[str]:
    """The services whose package exists in this installation."""
    names = []
    for name in SERVICE_NAMES:
        try:
            module = importlib.import_module(f"services.{name}")
        except ModuleNotFoundError:
            continue
        if hasattr(module, "spec"):
            names.append(name)
    return names


def load(name: str) -> ServiceSpec:
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}")
    return importlib.import_module(f"services.{name}").spec()


def load_all() -> list[ServiceSpec]:
    return [load(n) for n in available()]
