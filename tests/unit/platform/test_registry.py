"""Which services an installation has: a package that is not there is skipped, but a service
whose own code fails to import is an error, never a service quietly missing from the
single-process mode."""

from __future__ import annotations

import sys

import pytest

import services
from strata import registry


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Service packages written for the test, beside the real ones."""
    monkeypatch.setattr(services, "__path__", [*services.__path__, str(tmp_path)])
    written = []

    def write(name: str, service_code: str) -> None:
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text(
            "from services.%s.service import spec  # noqa: F401\n" % name)
        (package / "service.py").write_text(service_code)
        written.append(name)

    yield write
    for name in written:
        for module in [m for m in sys.modules if m == f"services.{name}" or m.startswith(f"services.{name}.")]:
            del sys.modules[module]


def test_a_package_that_is_not_installed_is_skipped(monkeypatch):
    monkeypatch.setattr(registry, "SERVICE_NAMES", (*registry.SERVICE_NAMES, "absentsvc"))
    assert "absentsvc" not in registry.available()
    assert "pricing" in registry.available()


@pytest.mark.parametrize("broken", [
    "import strata_no_such_dependency\n",                  # a missing dependency: ModuleNotFoundError
    "from shared.money import no_such_name\n",             # a name that is not there: ImportError
    "from services.brokensvc.no_such_module import x\n",   # a module of its own that is missing
])
def test_a_service_whose_code_fails_to_import_is_an_error(packages, monkeypatch, broken):
    packages("brokensvc", broken + "def spec():\n    return None\n")
    monkeypatch.setattr(registry, "SERVICE_NAMES", (*registry.SERVICE_NAMES, "brokensvc"))
    with pytest.raises(ImportError):
        registry.available()
