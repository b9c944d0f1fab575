"""The GB 11643-1999 rule (smartrehab.citizen_id) in Python, on the hand-worked cases of citizen_id_cases.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from citizen_id_cases import AS_OF, CASES, EMPTY

from smartrehab import citizen_id as cid


@pytest.mark.parametrize(("raw", "value", "converted", "failure"), CASES)
def test_rule_on_each_case(raw, value, converted, failure):
    assert cid.check(raw, AS_OF) == cid.IdCheck(value, converted, failure)


@pytest.mark.parametrize("raw", EMPTY)
def test_no_value_is_not_checked(raw):
    assert cid.normalise(raw) is None and cid.check(raw, AS_OF) is None


def test_check_characters_by_hand():
    assert cid.check_char("11010519491231002") == "X"
    assert cid.check_char("13050319670401001") == "6"
    assert cid.check_char("11010519990230002") == "3"
    assert cid.check_char("11010518991231002") == "3"
    assert cid.to_18("110105491231002") == "11010519491231002X"
    assert cid.to_18("340524800101001") == "34052419800101001X"
    # The 17th digit has weight 2, so its ten values give ten different check characters.
    assert len({cid.check_char(f"1101051949123100{d}") for d in range(10)}) == 10


def test_birth_date_bounds_follow_the_as_of_day():
    born = "110105202611200011"[:17]
    n = born + cid.check_char(born)  # born on the as-of day itself
    assert cid.check(n, AS_OF).ok
    assert cid.check(n, date(2026, 11, 19)).failure == cid.FUTURE_BIRTH_DATE
    assert cid.check("11010519491231002X", date(1949, 12, 30)).failure == cid.FUTURE_BIRTH_DATE
    # Without an as-of day the rule uses today.
    tomorrow, today = (f"110105{date.today() + timedelta(days=d):%Y%m%d}002" for d in (1, 0))
    assert cid.check(tomorrow + cid.check_char(tomorrow)).failure == cid.FUTURE_BIRTH_DATE
    assert cid.check(today + cid.check_char(today)).ok


def test_normalise_maps_exactly_the_documented_characters():
    assert cid.normalise(" ０１２３４５６７８９Ｘｘx ") == "0123456789XXX"
    assert cid.normalise("ｙ") == "ｙ"  # nothing else is rewritten
    assert cid.WHITESPACE.strip(cid.WHITESPACE) == ""
