"""The ``strata`` command speaks plainly: a busy port, a token that would be born expired, and
``--quiet`` meaning quiet."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest

from strata import cli, single
from strata.processes import REPO


def test_run_on_a_busy_port_says_so_and_names_the_option(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # generous: it only waits for the process to give up, which it does at once
        result = subprocess.run(
            [sys.executable, "-m", "strata.cli", "run", "--port", str(port), "--data-dir", str(tmp_path),
             "--no-simulate"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and "--port" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Strata is running" not in result.stdout


@pytest.mark.parametrize("ttl", ["0", "-5"])
def test_a_token_without_a_positive_lifetime_is_refused(ttl, capsys):
    assert cli.main(["token", "--role", "admin", "--ttl-minutes", ttl]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--ttl-minutes must be at least 1" in err


def test_a_token_with_a_lifetime_is_printed(capsys):
    assert cli.main(["token", "--role", "admin", "--ttl-minutes", "5"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT


@pytest.mark.parametrize(("quiet", "level"), [(True, logging.ERROR), (False, logging.WARNING)])
def test_quiet_quiets_the_logs_too(quiet, level, monkeypatch, tmp_path):
    async def serve(settings, args):
        return 0

    monkeypatch.setattr(single, "_serve", serve)
    root = logging.getLogger()
    kept = root.level, root.handlers[:]
    try:
        settings = cli.single_process_settings(tmp_path)
        assert single.run_single_process(settings, SimpleNamespace(quiet=quiet)) == 0
        assert root.level == level
    finally:
        root.setLevel(kept[0])
        root.handlers[:] = kept[1]
