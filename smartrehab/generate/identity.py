"""Synthetic identities: Chinese names, GB 11643 citizen ID numbers (and their flaws), phone numbers, addresses.

Nothing here is real: surnames and given-name characters are common ones, regions come from the
catalog's region code table, and every number is drawn from a seeded generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from smartrehab import citizen_id

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌海波宁飞云凯龙浩东亮成俊峰振宇晨阳鑫博"
STREETS = ["建国路", "长安街", "朝阳北路", "京开高速辅路", "学院路", "德胜门外大街", "永定路", "丰台南路", "通州北苑", "回龙观西大街"]

# The rule itself lives in smartrehab.citizen_id; these names stay for the generator's callers.
ID_WEIGHTS = citizen_id.WEIGHTS
ID_CHECK = citizen_id.CHECK_CHARS
id_check_char = citizen_id.check_char


def valid_id_number(number: str, as_of: date | None = None) -> bool:
    """Whether ingestion accepts ``number`` (the full GB 11643 rule of ``smartrehab.citizen_id``)."""
    result = citizen_id.check(number, as_of)
    return result is not None and result.ok


def make_id_number(rng: random.Random, region: str, birth: date, sex_code: str) -> str:
    seq = rng.randrange(0, 100) * 10 + (rng.choice((1, 3, 5, 7, 9)) if sex_code == "1" else rng.choice((0, 2, 4, 6, 8)))
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


def corrupt_id_check(number: str) -> str:
    """The same number with a wrong check character."""
    wrong = [c for c in ID_CHECK if c != number[17]]
    return number[:17] + wrong[int(number[16]) % len(wrong)]


# ---- further ID-number flaws -------------------------------------------------------------------------
@dataclass(frozen=True)
class IdFlawRates:
    """Probability per ID-number cell of each flaw beyond a wrong check character (at most one per cell).
    Some flaws fit only some numbers; a cell drawn for a flaw that does not fit it keeps its value."""

    fifteen_digit: float = 0.003       # the pre-1999 form (born 19xx only); accepted, converted to 18 digits
    fullwidth: float = 0.002           # full-width digits and Ｘ (not in fixed-width files); accepted
    lowercase_x: float = 0.02          # x for X (numbers ending in X only, about 1 in 11); accepted
    invalid_birth_date: float = 0.001  # a day no calendar has (0230, 0431, month 13...); quarantined
    future_birth_date: float = 0.0005  # a birth date 1 to 10 years after the delivery day; quarantined
    birth_before_1900: float = 0.0005  # a birth year 1800-1899; quarantined


# Flaw kind -> the failure code ingestion must quarantine it with (None: accepted after normalisation).
ID_FLAW_RULES = {
    "id_15_digit": None,
    "id_fullwidth": None,
    "id_lowercase_x": None,
    "id_invalid_birth_date": citizen_id.INVALID_BIRTH_DATE,
    "id_future_birth_date": citizen_id.FUTURE_BIRTH_DATE,
    "id_birth_before_1900": citizen_id.BIRTH_BEFORE_1900,
}
_FULLWIDTH_ID = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_IMPOSSIBLE_DAYS = ("0230", "0231", "0431", "0631", "0931", "1131", "1301", "0015", "0100")


def id_flaw_rng(seed: int, *parts: object) -> random.Random:
    """The stream the ID flaws are drawn from, apart from every other stream of the generator (adding these
    flaws changes no other generated figure)."""
    return random.Random("|".join(map(str, (seed, "idflaws", *parts))))


def _with_birth(number: str, birth: str) -> str:
    first17 = number[:6] + birth + number[14:17]
    return first17 + id_check_char(first17)


def id_flaw(rng: random.Random, number: str, as_of: date, rates: IdFlawRates = IdFlawRates(),
            fixed_width: bool = False) -> tuple[str, str] | None:
    """At most one flaw for a valid 18-digit ``number``: ``(kind, flawed value)`` (kinds in ``ID_FLAW_RULES``),
    or None. One draw per call decides, so the stream moves alike whatever is drawn; a flaw that changes
    the birth date recomputes the check character, so that the birth date is the only rule broken."""
    u = rng.random()
    choices = (("id_15_digit", rates.fifteen_digit), ("id_fullwidth", rates.fullwidth),
               ("id_lowercase_x", rates.lowercase_x), ("id_invalid_birth_date", rates.invalid_birth_date),
               ("id_future_birth_date", rates.future_birth_date), ("id_birth_before_1900", rates.birth_before_1900))
    kind = None
    for k, rate in choices:
        if u < rate:
            kind = k
            break
        u -= rate
    if kind == "id_15_digit" and number[6:8] == "19":
        return kind, number[:6] + number[8:17]
    if kind == "id_fullwidth" and not fixed_width:
        return kind, number.translate(_FULLWIDTH_ID)
    if kind == "id_lowercase_x" and number[17] == "X":
        return kind, number[:17] + "x"
    if kind == "id_invalid_birth_date":
        return kind, _with_birth(number, number[6:10] + rng.choice(_IMPOSSIBLE_DAYS))
    if kind == "id_future_birth_date":
        return kind, _with_birth(number, f"{as_of + timedelta(days=rng.randint(365, 3650)):%Y%m%d}")
    if kind == "id_birth_before_1900":
        mmdd = number[10:14]
        year = rng.choice((1804, 1896)) if mmdd == "0229" else rng.randint(1800, 1899)
        return kind, _with_birth(number, f"{year}{mmdd}")
    return None


def make_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def make_phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def make_address(rng: random.Random, region_label: str) -> str:
    return f"{region_label}{rng.choice(STREETS)}{rng.randrange(1, 300)}号{rng.randrange(1, 30)}单元{rng.randrange(101, 2400)}"
