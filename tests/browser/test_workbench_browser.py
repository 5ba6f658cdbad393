"""The workbench in a real browser (Chromium) against one running ``strata run``: each role signs
in and does each page's main task end to end; what a role must not see it does not; no page
loads anything from outside 127.0.0.1. The zh-CN screenshots in docs/workbench/ come from here."""

from __future__ import annotations

import codecs
import re
from datetime import date, timedelta

import pytest

from tests.browser.conftest import screenshot, sign_in_as

pytestmark = pytest.mark.browser


def api_has(server, path: str) -> bool:
    with server.api() as api:
        return path in api.get("/openapi.json").json()["paths"]


def first_customer_of(server, rm_id: str) -> str:
    with server.api() as api:
        return api.get(f"/v1/rms/{rm_id}/worklist", params={"limit": 1}).json()["items"][0]["customer_id"]


async def test_sign_in_page_offers_the_simulated_people_in_chinese(visit, strata_server):
    page = await visit.page()
    await page.goto(strata_server.base + "/")
    assert page.url.endswith("/app/signin")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    await page.get_by_role("heading", name="开发环境登录").wait_for()
    assert await page.locator("button[data-rm]").count() > 0
    assert await page.locator("button[data-branch]").count() > 0
    await screenshot(page, "signin", full_page=False)


async def test_rm_home_acknowledges_closes_and_snoozes_signals_in_place(visit, strata_server):
    rm = strata_server.people["rm"]
    page = await visit.page()
    await sign_in_as(page, strata_server, rm=rm["rm_id"])
    assert page.url.endswith("/app/home")
    await page.get_by_role("heading", name=re.compile("我的工作台")).wait_for()
    counts = page.locator("#counts")
    assert "名下客户" in await counts.inner_text()
    await screenshot(page, "rm-home", full_page=False)

    rows = page.locator('#signals tr[data-status="open"]')
    assert await rows.count() >= 2
    first = await rows.nth(0).get_attribute("data-signal")
    await page.locator(f"#sig-{first}").get_by_role("button", name=re.compile("^确认")).click()
    await page.locator(f'#sig-{first}[data-status="acknowledged"]').wait_for()

    second = await page.locator('#signals tr[data-status="open"]').nth(0).get_attribute("data-signal")
    await page.locator(f"#sig-{second}").get_by_role("button", name=re.compile("^已处理")).click()
    await page.locator(f'#sig-{second}[data-status="done"]').wait_for()

    # snooze: the API's answer in the row (the date typed stays), success or refusal
    third = await page.locator('#signals tr[data-status="open"], #signals tr[data-status="acknowledged"]') \
        .nth(0).get_attribute("data-signal")
    until = (date.today() + timedelta(days=9)).isoformat()
    row = page.locator(f"#sig-{third}")
    await row.locator('input[name="until"]').fill(until)
    await row.get_by_role("button", name="暂缓").click()
    await page.locator(f"#sig-{third} [role=alert], #sig-{third}:has-text('暂缓至')").first.wait_for()
    row = page.locator(f"#sig-{third}")
    assert await row.locator('[role="alert"]').count() == 1 or "暂缓至" in await row.inner_text()
    if await row.locator('input[name="until"]').count():
        assert await row.locator('input[name="until"]').input_value() == until

    with strata_server.api() as api:
        done = api.get(f"/v1/signals/{second}").json()
    assert done["status"] == "done", "the browser's click reached the API"


async def test_rm_home_updates_in_place_when_a_signal_changes_elsewhere(visit, strata_server):
    rm = strata_server.people["rm"]
    page = await visit.page()
    await sign_in_as(page, strata_server, rm=rm["rm_id"])
    open_row = page.locator('#signals tr[data-status="open"]').nth(0)
    signal_id = await open_row.get_attribute("data-signal")
    scrolled = await page.evaluate("window.scrollTo(0, 300); window.scrollY")
    assert scrolled > 0
    with strata_server.api("rm", rm_id=rm["rm_id"]) as api:
        assert api.post(f"/v1/signals/{signal_id}/ack").status_code == 200
    await page.locator(f'#sig-{signal_id}[data-status="acknowledged"]').wait_for(timeout=60_000)
    # swapped in place, not reloaded: the page stays where the reader had scrolled it (the
    # simulated bank keeps raising signals, and the browser's scroll anchoring may then move
    # the page by the rows added above what is on screen, never back to the top)
    after, screen = await page.evaluate("[window.scrollY, window.innerHeight]")
    assert abs(after - scrolled) < screen / 4, f"the refresh kept the reader's place ({scrolled} -> {after})"


async def test_rm_book_sorts_filters_and_pages(visit, strata_server):
    rm = strata_server.people["rm"]
    page = await visit.page()
    await sign_in_as(page, strata_server, rm=rm["rm_id"])
    await page.locator("#book thead").get_by_role("link", name=re.compile("资产")).click()
    await page.wait_for_url(re.compile(r"sort=aum"))
    amounts = [float(t.replace(",", "")) for t in await page.locator('#book td[data-label="资产（AUM）"]').all_inner_texts()]
    assert amounts == sorted(amounts, reverse=True) and amounts
    await page.select_option("#f-tier", "gold")
    await page.wait_for_url(re.compile(r"tier=gold"))
    tiers = await page.locator('#book td[data-label="层级"]').all_inner_texts()
    assert tiers and all("金卡客户" in t for t in tiers)


async def test_rm_customer_page_masks_identity_and_logs_a_follow_up_keeping_input_on_error(visit, strata_server):
    rm = strata_server.people["rm"]
    customer = first_customer_of(strata_server, rm["rm_id"])
    page = await visit.page()
    await sign_in_as(page, strata_server, rm=rm["rm_id"])
    await page.goto(f"{strata_server.base}/app/customers/{customer}")
    await page.get_by_role("heading", name="客户资料").wait_for()
    phone = await page.locator('[data-field="phone"]').inner_text()
    assert "*" in phone or phone == "—", "the API masks the phone for an RM"
    if api_has(strata_server, "/v1/customers/{customer_id}/aum/daily"):
        await page.locator(".chart canvas").first.wait_for()
    else:
        await page.get_by_text("当前接口尚未提供每日资产序列").wait_for()

    note = "客户询问大额存单利率，约下周再谈"
    await page.fill("#fu-note", note)
    await page.fill("#fu-next", "2001-01-01")
    await page.get_by_role("button", name="保存跟进记录").click()
    await page.locator("#fu-error").wait_for()
    assert "下次联系日期早于本次联系" in await page.locator("#fu-error").inner_text()
    assert await page.input_value("#fu-note") == note, "nothing typed is lost"

    await page.fill("#fu-next", (date.today() + timedelta(days=7)).isoformat())
    await page.get_by_role("button", name="保存跟进记录").click()
    await page.get_by_role("status").filter(has_text="跟进记录已保存").wait_for()
    assert note in await page.locator("#follow-ups table").inner_text()
    await page.set_viewport_size({"width": 1280, "height": 1500})
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "customer", full_page=False)


async def test_an_rm_cannot_open_another_rms_customer(visit, strata_server):
    rm, other = strata_server.people["rm"], strata_server.people["other_rm"]
    theirs = first_customer_of(strata_server, other["rm_id"])
    page = await visit.page()
    await sign_in_as(page, strata_server, rm=rm["rm_id"])
    response = await page.goto(f"{strata_server.base}/app/customers/{theirs}")
    assert response.status == 403
    assert "不在您的名单中" in await page.locator('[role="alert"]').inner_text()
    assert (await page.goto(f"{strata_server.base}/app/home?rm={other['rm_id']}")).status == 403


async def test_a_branch_manager_sees_their_branch_only(visit, strata_server):
    rm, elsewhere = strata_server.people["rm"], strata_server.people["other_branch_rm"]
    page = await visit.page()
    await sign_in_as(page, strata_server, branch=rm["branch_id"])
    assert page.url.endswith("/app/branch")
    heading = await page.locator("h1").inner_text()
    assert rm["branch_id"] in heading and await page.locator("#branch-pick").count() == 0
    await page.locator(".chart canvas").first.wait_for()
    await screenshot(page, "branch-dashboard")
    await page.goto(f"{strata_server.base}/app/branch?branch={elsewhere['branch_id']}")
    assert elsewhere["branch_id"] not in await page.locator("h1").inner_text()
    assert (await page.goto(f"{strata_server.base}/app/home?rm={elsewhere['rm_id']}")).status == 403
    customer = first_customer_of(strata_server, elsewhere["rm_id"])
    assert (await page.goto(f"{strata_server.base}/app/customers/{customer}")).status == 403


async def test_head_office_picks_any_branch(visit, strata_server):
    other = strata_server.people["other_branch_rm"]["branch_id"]
    page = await visit.page()
    await sign_in_as(page, strata_server, role="analyst")
    await page.select_option("#branch-pick", other)
    await page.wait_for_url(re.compile(rf"branch={other}"))
    assert other in await page.locator("h1").inner_text()


async def test_segments_are_created_with_errors_in_place_and_exported_with_a_bom(visit, strata_server):
    page = await visit.page()
    await sign_in_as(page, strata_server, role="analyst")
    await page.goto(f"{strata_server.base}/app/segments")
    await screenshot(page, "segments", full_page=False)
    await page.get_by_role("link", name="新建名单模板").click()
    await page.fill("#seg-name", "browser-gold-watch")
    bad = '{"field": "no_such_field", "op": "eq", "value": 1}'
    await page.fill("#seg-filter", bad)
    await page.fill("#seg-params", "{}")
    await page.get_by_role("button", name="保存").click()
    await page.locator("#segment-error").wait_for()
    assert "no_such_field" in await page.locator("#segment-error").inner_text()
    assert await page.input_value("#seg-filter") == bad, "nothing typed is lost"
    await screenshot(page, "segment-error", full_page=False)

    await page.fill("#seg-filter", '{"field": "tier", "op": "in", "value": ["gold", "platinum"]}')
    await page.get_by_role("button", name="保存").click()
    await page.get_by_role("status").filter(has_text="browser-gold-watch").wait_for()

    await page.locator('tr[data-segment="browser-gold-watch"]').get_by_role("link", name="客户名单").click()
    await page.fill("#purpose", "年终回访名单核对")
    await page.get_by_role("button", name="继续").click()
    await page.locator("tr[data-member]").first.wait_for()
    await page.get_by_role("button", name="统计人数").click()
    await page.locator("[data-count]").wait_for()
    assert int(await page.locator("[data-count]").get_attribute("data-count")) >= await page.locator("tr[data-member]").count()
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="导出 CSV").click()
    download = await download_info.value
    content = open(await download.path(), "rb").read()
    assert content.startswith(codecs.BOM_UTF8 + b"customer_id,"), "Excel on Chinese Windows reads it as UTF-8"


async def test_pricing_quotes_and_simulates_with_errors_in_place(visit, strata_server):
    rm = strata_server.people["rm"]
    customer = first_customer_of(strata_server, rm["rm_id"])
    page = await visit.page()
    await sign_in_as(page, strata_server, role="analyst")
    await page.goto(f"{strata_server.base}/app/pricing")
    await page.get_by_role("heading", name="收费标准", exact=True).wait_for()
    await page.fill("#q-customer", customer)
    await page.fill("#q-amount", "abc")
    await page.get_by_role("button", name="试算", exact=True).click()
    await page.locator("#quote-error").wait_for()
    assert await page.input_value("#q-amount") == "abc"
    await page.fill("#q-amount", "2000.00")
    await page.get_by_role("button", name="试算", exact=True).click()
    await page.locator("#quote-result").wait_for()
    assert await page.locator('#quote-result [data-field="net"]').inner_text()
    # the fee what-if's own button (the page also has the tier-policy simulation's)
    await page.get_by_role("region", name=re.compile("拟议收费标准")).get_by_role("button", name="测算收费").click()
    await page.locator("#simulate-result").wait_for()
    assert await page.locator('[data-field="income-change"]').inner_text()
    await screenshot(page, "pricing")


async def test_admin_runs_the_registry_handover_preview_daily_scan_and_reads_the_audit_log(visit, strata_server):
    rm = strata_server.people["rm"]
    page = await visit.page()
    await sign_in_as(page, strata_server, role="admin")
    await page.goto(f"{strata_server.base}/app/ops")
    await page.fill("#rm-id", "RM-BROWSER-01")
    await page.fill("#rm-name", "测试经理")
    await page.fill("#rm-branch", rm["branch_id"])
    await page.fill("#rm-capacity", "many")
    await page.get_by_role("button", name="保存客户经理").click()
    await page.locator("#rm-error").wait_for()
    assert await page.input_value("#rm-name") == "测试经理"
    await page.fill("#rm-capacity", "300")
    await page.get_by_role("button", name="保存客户经理").click()
    await page.locator('tr[data-rm="RM-BROWSER-01"]').wait_for()
    await page.locator('tr[data-rm="RM-BROWSER-01"]').get_by_role("button", name="停用").click()
    await page.locator('tr[data-rm="RM-BROWSER-01"] td[data-label="状态"]', has_text="停用").wait_for()
    with strata_server.api() as api:
        assert api.get("/v1/rms/RM-BROWSER-01").json()["active"] is False

    await page.locator("#job-scan").get_by_role("button", name="预演").click()
    confirm = page.locator("#job-scan-result").get_by_role("button", name=re.compile("确认执行"))
    await confirm.wait_for()
    await screenshot(page, "operations", full_page=False)
    await confirm.click()
    await page.locator('#job-scan-result [data-job-result="run"]').wait_for()

    await page.goto(f"{strata_server.base}/app/ops/handover?rm={rm['rm_id']}")
    await page.get_by_role("heading", name="将移交的名单").wait_for()
    assert await page.locator('input[name="to"]').count() >= 0

    customer = first_customer_of(strata_server, rm["rm_id"])
    await page.goto(f"{strata_server.base}/app/customers/{customer}")
    await page.fill("#purpose", "核实客户身份信息")
    await page.get_by_role("button", name="继续").click()
    await page.get_by_role("heading", name="客户资料").wait_for()
    assert "*" not in await page.locator('[data-field="phone"]').inner_text(), "an admin reads it unmasked"
    await page.goto(f"{strata_server.base}/app/ops/audit?customer_id={customer}")
    assert "核实客户身份信息" in await page.locator("tbody").inner_text()
    await screenshot(page, "audit", full_page=False)


async def test_english_is_one_click_away_and_stays(visit, strata_server):
    page = await visit.page()
    await sign_in_as(page, strata_server, role="analyst")
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("heading", name=re.compile("Branch dashboard")).wait_for()
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.goto(f"{strata_server.base}/app/pricing")
    await page.get_by_role("heading", name="Fee schedule", exact=True).wait_for()


async def test_on_a_phone_the_home_fits_and_the_keyboard_reaches_everything(browser, strata_server):
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                        has_touch=True)
    try:
        page = await context.new_page()
        await sign_in_as(page, strata_server, rm=strata_server.people["rm"]["rm_id"])
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width}px wide on a 390px screen"
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip"
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.tagName") == "A"
        await screenshot(page, "rm-home-phone", full_page=False)
    finally:
        await context.close()
