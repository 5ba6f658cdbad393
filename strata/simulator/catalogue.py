"""What the simulated bank is made of: branches and their regions, the products it sells, and
the pools names, tags and identity numbers are drawn from. Plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Branch:
    branch_id: str
    region: str
    area_code: str
    """The six-digit administrative code identity numbers issued there start with."""
    weight: int
    """How many of the bank's customers call it home, relative to the others."""


BRANCHES: tuple[Branch, ...] = (
    Branch("BR-NC-001", "NC", "360102", 5),
    Branch("BR-NC-002", "NC", "360103", 4),
    Branch("BR-NC-003", "NC", "360111", 3),
    Branch("BR-JJ-001", "JJ", "360402", 3),
    Branch("BR-GZ-001", "GZ", "360702", 2),
    Branch("BR-SR-001", "SR", "361102", 2),
)


@dataclass(frozen=True)
class ProductKind:
    code: str
    product_type: str
    term_days: int = 0
    """Days from opening to maturity; 0 for products that do not mature."""
    annual_rate: float = 0.0
    """Interest or expected return paid at maturity."""
    min_risk: str = "C1"


PRODUCTS: tuple[ProductKind, ...] = (
    ProductKind("DD-SAVINGS", "demand_deposit"),
    ProductKind("TD-3M", "time_deposit", 91, 0.0125),
    ProductKind("TD-6M", "time_deposit", 182, 0.0145),
    ProductKind("TD-1Y", "time_deposit", 365, 0.0165),
    ProductKind("TD-2Y", "time_deposit", 730, 0.0185),
    ProductKind("TD-3Y", "time_deposit", 1095, 0.0215),
    ProductKind("WM-STEADY-90", "wealth_product", 90, 0.026, "C2"),
    ProductKind("WM-GOLD-180", "wealth_product", 180, 0.031, "C3"),
    ProductKind("WM-HOT-365", "wealth_product", 365, 0.036, "C3"),
    ProductKind("FUND-BOND", "fund", min_risk="C2"),
    ProductKind("FUND-INDEX-300", "fund", min_risk="C3"),
    ProductKind("FUND-EQ-GROWTH", "fund", min_risk="C4"),
    ProductKind("INS-ANNUITY", "insurance"),
    ProductKind("INS-WHOLE-LIFE", "insurance"),
    ProductKind("PM-GOLD-ACCUM", "precious_metal"),
    ProductKind("PM-GOLD-BAR", "precious_metal"),
    ProductKind("LN-MORTGAGE", "loan"),
    ProductKind("LN-CONSUMER", "loan"),
    ProductKind("CC-STANDARD", "credit_card"),
    ProductKind("CC-PLATINUM", "credit_card"),
)
PRODUCT_INDEX: dict[str, int] = {p.code: i for i, p in enumerate(PRODUCTS)}
PRODUCT_TYPES: tuple[str, ...] = (
    "demand_deposit", "time_deposit", "wealth_product", "fund", "insurance", "precious_metal",
    "loan", "credit_card",
)
TYPE_INDEX: dict[str, int] = {t: i for i, t in enumerate(PRODUCT_TYPES)}
LIABILITY_TYPES = frozenset({"loan", "credit_card"})
"""Accounts the customer owes on: a debit raises the balance, a credit lowers it."""
TERM_CODES = {"time_deposit": ("TD-3M", "TD-6M", "TD-1Y", "TD-2Y", "TD-3Y"),
              "wealth_product": ("WM-STEADY-90", "WM-GOLD-180", "WM-HOT-365")}

RISK_LEVELS = ("C1", "C2", "C3", "C4", "C5")
RISK_WEIGHTS = (10, 30, 35, 18, 7)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯晨欣怡婷雪琳佳慧子涵梓轩雨泽博思"

TAGS = ("travel", "golf", "tea", "fitness", "education", "healthcare", "auto", "overseas_study",
        "retirement", "mortgage", "investment", "shopping", "art", "family", "photography")

MOBILE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
                   "155", "156", "158", "159", "176", "177", "180", "181", "186", "187", "188", "189")

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a resident identity number.

    >>> id_check_digit("11010519491231002")
    'X'
    """
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK[total % 11]
