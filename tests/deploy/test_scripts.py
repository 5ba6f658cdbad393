"""Every shell script of the deployment/test layer must at least parse."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scripts() -> list[Path]:
    found = {p for p in ROOT.glob("deploy/**/*.sh")}
    found |= {p for p in (ROOT / "scripts").iterdir() if p.is_file()} if (ROOT / "scripts").is_dir() else set()
    found.add(ROOT / ".ci" / "run")
    shells = set()
    for p in found:
        if p.suffix == ".sh" or p.read_text(errors="replace").startswith(("#!/usr/bin/env bash", "#!/bin/bash")):
            shells.add(p)
    return sorted(shells)


SCRIPTS = _scripts()


def test_found_the_scripts() -> None:
    names = {str(p.relative_to(ROOT)) for p in SCRIPTS}
    for expected in ("deploy/kafka/kafka.sh", "deploy/postgres/postgres.sh", "scripts/test",
                     "scripts/run", ".ci/run"):
        assert expected in names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_bash_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["deploy/kafka/kafka.sh", "deploy/postgres/postgres.sh", "scripts/test",
                                  "scripts/run", ".ci/run"])
def test_executable(name: str) -> None:
    assert os.access(ROOT / name, os.X_OK), f"{name} is not executable"


def test_ci_run_is_just_the_test_command() -> None:
    lines = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip()]
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    assert lines[-1] == "exec scripts/test"
