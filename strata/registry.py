"""The services Strata has, in the order a single process starts them."""

from __future__ import annotations

import importlib

from shared.runtime.service import ServiceSpec

SERVICE_NAMES = ("profile", "tiering", "alerts", "pricing", "assignment")


def available() -> list[str]:
    """The services whose package exists in this installation.

    Only the absence of the package itself skips a service. An import that fails inside it (a
    missing dependency, a name that is not there, a module of its own missing) is raised: the
    single-process mode must never start without a service because its code is broken."""
    names = []
    for name in SERVICE_NAMES:
        package = f"services.{name}"
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise
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
