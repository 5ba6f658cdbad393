"""Explanations in the bank's two languages (zh-CN and en): how an amount and a tier read in a
sentence, for the explain endpoints of tiering and pricing. The figures themselves travel beside
the sentences, in the API's usual form (money as two-place strings)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

Language = Literal["zh-CN", "en"]
LANGUAGES = ("zh-CN", "en")
_CJK = re.compile(r"[\u3400-\u9fff]")


def amount(value: Decimal | None) -> str:
    """``Decimal('1234567.5')`` -> ``'1,234,567.50'``: an amount as a sentence shows it."""
    return "—" if value is None else f"{value:,.2f}"


def tier_label(tier_id: str | None, names: dict[str, str], lang: Language) -> str:
    """A tier as a sentence names it: in zh-CN the Chinese part of the tier's configured name
    (``Gold 金卡客户`` -> ``金卡客户``), in en its id.

    >>> tier_label("gold", {"gold": "Gold 金卡客户"}, "zh-CN"), tier_label("gold", {"gold": "Gold 金卡客户"}, "en")
    ('金卡客户', 'gold')
    """
    if tier_id is None:
        return "—"
    if lang == "zh-CN":
        name = names.get(tier_id, "")
        words = [w for w in name.split() if _CJK.search(w)]
        return " ".join(words) if words else tier_id
    return tier_id


def says(lang: Language, en: str, zh: str, **figures) -> str:
    """The sentence in ``lang``, its figures filled in."""
    return (zh if lang == "zh-CN" else en).format(**figures)
