"""One real ``strata run`` for the whole browser session, and Debian's Chromium driven by
Playwright.

The server is a subprocess (``python -m strata.cli run``) on a free 127.0.0.1 port with its own
temporary data directory and the simulated bank feeding it; it is started once, when the first
browser test needs it, and stopped with SIGINT (the Ctrl-C path: it drains and stops in order)
after the last (the browser tests are one module, so the scope is the module's: the simulator
must not go on loading the machine while the rest of the suite runs). Chromium is ``/usr/bin/chromium`` (``scripts/test`` installs it with
``fonts-noto-cjk``); Playwright never downloads a browser. Every request each page makes is
recorded, so a test can prove nothing left 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.auth import issue_token
from strata.processes import free_port
from tests.conftest import integration_required

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STRATA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--lang=zh-CN"]
SECRET = "browser-tests-key-of-enough-length-for-hs256"
SCREENSHOTS = REPO / "docs" / "workbench"
CUSTOMERS = 800
READY_TIMEOUT = 150.0


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    data_dir: str
    log: Path
    people: dict = field(default_factory=dict)

    def token(self, role: str, **ids) -> str:
        return issue_token(SECRET, role, **ids)

    def api(self, role: str = "admin", **ids) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token(role, **ids)}"},
                            timeout=30)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""


def _wait_for_a_working_bank(server: Server) -> dict:
    """Until the simulated bank has RMs with books and signals: the people the tests act as."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "not started"
    with server.api() as api:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"strata run exited with {server.proc.returncode}:\n{server.tail()}")
            try:
                rms = api.get("/v1/rms", params={"limit": 500}).json()["items"]
                busy = sorted((r for r in rms if r["customers"] >= 5), key=lambda r: -r["customers"])
                for rm in busy[:5]:
                    signals = api.get("/v1/signals", params={"rm_id": rm["rm_id"], "status": "open", "limit": 5}).json()
                    if len(signals["items"]) >= 3:
                        others = [r for r in busy if r["rm_id"] != rm["rm_id"]]
                        other_branch = [r for r in busy if r["branch_id"] != rm["branch_id"]]
                        if others and other_branch:
                            return {"rm": rm, "other_rm": others[0], "other_branch_rm": other_branch[0]}
                last = f"{len(rms)} RMs, {len(busy)} with books"
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
            time.sleep(1.0)
    raise TimeoutError(f"the simulated bank did not get going ({last}):\n{server.tail()}")


@pytest.fixture(scope="module")
def strata_server():
    data_dir = tempfile.mkdtemp(prefix="strata-browser-")
    port = free_port()
    log = Path(data_dir) / "strata-run.log"
    env = {**os.environ, "STRATA_AUTH__SECRET": SECRET, "STRATA_WORKBENCH__POLL_SECONDS": "2",
           "PYTHONUNBUFFERED": "1"}
    for name in ("STRATA_BUS", "STRATA_DATABASE_URL"):
        env.pop(name, None)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "strata.cli", "run", "--host", "127.0.0.1", "--port", str(port),
                                 "--data-dir", data_dir, "--customers", str(CUSTOMERS), "--quiet"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, data_dir, log)
    try:
        server.people = _wait_for_a_working_bank(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def browser():
    if not Path(CHROMIUM).exists():
        if integration_required():
            pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class Visit:
    """A browser context (its own cookies) that records every request and every console error."""

    def __init__(self, context, server: Server) -> None:
        self.context = context
        self.server = server
        self.requests: list[str] = []
        self.problems: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", self._check)

    def _check(self, response) -> None:
        """A page's own refusal (403 for another RM's customer) is what some tests want; a
        script, style or partial that fails to load never is."""
        if response.status >= 400 and response.request.resource_type != "document":
            self.problems.append(f"{response.status} {response.request.resource_type} {response.url}")

    async def page(self):
        page = await self.context.new_page()
        page.on("console", lambda m: self.problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        return page

    def outside(self) -> list[str]:
        here = self.server.base + "/"
        return [u for u in self.requests if not (u.startswith(here) or u.startswith(("data:", "blob:")))]


@pytest.fixture
async def visit(browser, strata_server):
    """A fresh visitor at 1,280 px in zh-CN; after the test, nothing may have left 127.0.0.1
    and no page may have logged an error (a CSP violation is one)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                        accept_downloads=True)
    context.set_default_timeout(20_000)
    visitor = Visit(context, strata_server)
    try:
        yield visitor
    finally:
        await context.close()
    assert visitor.requests, "the test made requests"
    assert visitor.outside() == [], f"requests outside 127.0.0.1: {visitor.outside()}"
    assert visitor.problems == [], f"errors in the browser console: {visitor.problems}"


async def sign_in_as(page, server: Server, *, rm: str | None = None, branch: str | None = None,
                     role: str | None = None) -> None:
    """Through the development sign-in page, as a person clicks it."""
    await page.goto(server.base + "/")
    if rm:
        await page.click(f'button[data-rm="{rm}"]')
    elif branch:
        await page.click(f'button[data-branch="{branch}"]')
    else:
        await page.click(f'button[data-role="{role}"]')
    await page.wait_for_load_state("networkidle")


async def screenshot(page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.wait_for_timeout(400)  # charts finish their entry animation
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
