"""The workbench's languages: Babel message catalogs (``locale/<lang>/LC_MESSAGES/messages.po``)
read at start-up, so there is nothing to compile. Message ids are the English text; the
``en`` catalog may leave them untranslated.

API problems are translated too where their text is known (``PROBLEMS``): the API answers in
English, the user reads Chinese."""

from __future__ import annotations

import contextvars
import re
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CATALOG_OF = {"zh-CN": "zh_CN", "en": "en"}
current_language: contextvars.ContextVar[str] = contextvars.ContextVar("workbench_language", default="zh-CN")


@lru_cache(maxsize=None)
def catalog(language: str) -> dict[str, str]:
    path = LOCALE_DIR / CATALOG_OF[language] / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        messages = read_po(fh, locale=CATALOG_OF[language])
    return {str(m.id): str(m.string) for m in messages if m.id and m.string and not m.fuzzy}


def gettext(message: str) -> str:
    return catalog(current_language.get()).get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


# The API's messages the workbench knows, as (pattern, Chinese text with the groups).
PROBLEMS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in (
    (r"^Customer (\S+) is not in your book\.$", "客户 {0} 不在您的名单中。"),
    (r"^(?:Profile|Tiering|Pricing|Assignment) has no customer (\S+)\.$", "没有客户 {0}。"),
    (r"^An RM sees only their own worklist and book\.$", "客户经理只能查看自己的名单。"),
    (r"^A branch manager of (\S+) may not see (\S+)\.$", "网点 {0} 的负责人不能查看网点 {1}。"),
    (r"^RM (\S+) is not in your branch\.$", "客户经理 {0} 不属于您的网点。"),
    (r"^No RM (\S+) in the registry\.$", "客户经理名册中没有 {0}。"),
    (r"^Role (\S+) may not do this\.$", "角色 {0} 无权执行此操作。"),
    (r"^Signal (\S+) is not routed to you\.$", "信号 {0} 不属于您。"),
    (r"^There is no signal (\S+)\.$", "没有信号 {0}。"),
    (r"^This read is audited: say why you need the data in the X-Strata-Purpose header\.$",
     "此次查询将记入审计日志：请说明用途。"),
    (r"^The bearer token has expired\.$", "登录已过期，请重新登录。"),
    (r"^The bearer token is not valid.*$", "令牌无效。"),
    (r"^Send Authorization: Bearer <token>\.$", "请先登录。"),
    (r"^next_date is before the contact\.$", "下次联系日期早于本次联系。"),
    (r"^A segment named '(.+)' exists; PUT replaces it\.$", "名单模板“{0}”已存在。"),
    (r"^'(.+)' is shipped in configuration; choose another name\.$", "“{0}”是系统预置模板，请换一个名称。"),
    (r"^No segment template named '(.+)'\.$", "没有名为“{0}”的名单模板。"),
    (r"^Strata's API did not answer.*$", "Strata 接口暂时无法访问，请稍后重试。"),
    (r"^The database or the bus does not answer now; retry shortly\.$", "系统繁忙，请稍后重试。"),
    (r"^Not Found$", "接口不存在（此版本的 Strata 尚不支持）。"),
)]
FIELD_MESSAGES = {
    "Field required": "必填",
    "Input should be a valid date or datetime, input is too short": "请输入有效日期",
    "Input should be a valid decimal": "请输入有效金额",
    "Input should be a valid number, unable to parse string as a number": "请输入数字",
    "Input should be a valid integer, unable to parse string as an integer": "请输入整数",
    "String should have at least 1 character": "不能为空",
    "Input should be greater than 0": "必须大于 0",
}


def problem_text(text: str, language: str | None = None) -> str:
    """An API message in the user's language where it is known, else as the API wrote it."""
    if (language or current_language.get()) != "zh-CN" or not text:
        return text
    for pattern, zh in PROBLEMS:
        match = pattern.match(text)
        if match:
            return zh.format(*match.groups())
    for english, zh in FIELD_MESSAGES.items():
        if text.startswith(english):
            return zh
    return text
