"""Synthetic identities: Chinese names, GB 11643 citizen ID numbers, phone numbers, addresses.

Nothing here is real: surnames and given-name characters are common ones, regions come from the
catalog's region code table, and every number is drawn from a seeded generator.
"""

from __future__ import annotations

import random
from datetime import date

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌海波宁飞云凯龙浩东亮成俊峰振宇晨阳鑫博"
STREETS = ["建国路", "长安街", "朝阳北路", "京开高速辅路", "学院路", "德胜门外大街", "永定路", "丰台南路", "通州北苑", "回龙观西大街"]

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits of a citizen ID number."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def valid_id_number(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit() and number[17] in ID_CHECK
            and id_check_char(number[:17]) == number[17])


def make_id_number(rng: random.Random, region: str, birth: date, sex_code: str) -> str:
    seq = rng.randrange(0, 100) * 10 + (rng.choice((1, 3, 5, 7, 9)) if sex_code == "1" else rng.choice((0, 2, 4, 6, 8)))
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


def corrupt_id_check(number: str) -> str:
    """The same number with a wrong check character."""
    wrong = [c for c in ID_CHECK if c != number[17]]
    return number[:17] + wrong[int(number[16]) % len(wrong)]


def make_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def make_phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def make_address(rng: random.Random, region_label: str) -> str:
    return f"{region_label}{rng.choice(STREETS)}{rng.randrange(1, 300)}号{rng.randrange(1, 30)}单元{rng.randrange(101, 2400)}"
