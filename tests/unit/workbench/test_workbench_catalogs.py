"""The workbench's message catalogs: every text the pages show has its Chinese, and the API's
known messages reach the user in their language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from strata.workbench import i18n

WORKBENCH = Path(i18n.__file__).resolve().parent
TEMPLATE_CALL = re.compile(r'''\b_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*[),]''')


def texts_in_templates() -> set[str]:
    found = set()
    for path in (WORKBENCH / "templates").glob("*.html"):
        found |= {m.group(1)[1:-1] for m in TEMPLATE_CALL.finditer(path.read_text())}
    return found


def texts_in_python() -> set[str]:
    found = set()
    for path in WORKBENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "gettext" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_every_text_of_the_pages_has_a_chinese_translation():
    used = texts_in_templates() | texts_in_python()
    assert len(used) > 200, "the extraction found the texts"
    missing = sorted(t for t in used if t not in i18n.catalog("zh-CN"))
    assert not missing, f"texts without a zh_CN translation: {missing}"


def test_every_tier_and_signal_type_has_a_name_in_both_languages():
    from services.alerts.domain import SIGNAL_TYPES
    from shared.settings import Settings

    for language in ("zh-CN", "en"):
        names = i18n.catalog(language)
        for key in [f"tier:{t.id}" for t in Settings().tiers] + [f"signal:{s}" for s in SIGNAL_TYPES]:
            assert names.get(key, "").strip(), f"{language}: {key}"


def test_known_api_problems_are_translated_and_unknown_ones_kept_as_written():
    assert i18n.problem_text("Customer C-9 is not in your book.", "zh-CN") == "客户 C-9 不在您的名单中。"
    assert i18n.problem_text("Customer C-9 is not in your book.", "en") == "Customer C-9 is not in your book."
    assert i18n.problem_text("Something new went wrong.", "zh-CN") == "Something new went wrong."
    assert i18n.problem_text("Field required", "zh-CN") == "必填"
