from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from datetime import date

import pytest

from smartrehab import citizen_id
from smartrehab.generate import identity
from spark_jobs.common.pseudonym import pseudonym


def test_id_check_character_matches_gb11643_example():
    # The worked example of GB 11643-1999: 11010519491231002 -> check character X.
    assert identity.id_check_char("11010519491231002") == "X"
    assert identity.valid_id_number("11010519491231002X")


def test_generated_ids_are_valid_and_corruption_is_detected():
    rng = random.Random(1)
    for _ in range(200):
        n = identity.make_id_number(rng, "110105", date(1988, 5, 17), "1")
        assert identity.valid_id_number(n) and n[6:14] == "19880517" and int(n[16]) % 2 == 1
        assert not identity.valid_id_number(identity.corrupt_id_check(n))


def test_pseudonym_is_hmac_sha256_over_domain_and_normalised_value():
    key = "ab" * 32
    expected = hmac.new(bytes.fromhex(key), b"id_number_pk|11010519491231002X", hashlib.sha256).hexdigest()
    assert pseudonym(key, "id_number_pk", " 11010519491231002x ") == expected
    assert pseudonym(key, "phone_pk", "11010519491231002X") != expected
    assert pseudonym("cd" * 32, "id_number_pk", "11010519491231002X") != expected


def _forced(kind: str) -> identity.IdFlawRates:
    """Rates that inject ``kind`` into every ID cell it fits."""
    fields = {"id_15_digit": "fifteen_digit", "id_fullwidth": "fullwidth", "id_lowercase_x": "lowercase_x",
              "id_invalid_birth_date": "invalid_birth_date", "id_future_birth_date": "future_birth_date",
              "id_birth_before_1900": "birth_before_1900"}
    zero = {f: 0.0 for f in fields.values()}
    return identity.IdFlawRates(**{**zero, fields[kind]: 1.0})


def _numbers(n: int, birth: date) -> list[str]:
    rng = random.Random(7)
    return [identity.make_id_number(rng, "110105", birth, rng.choice("12")) for _ in range(n)]


@pytest.mark.parametrize("kind", sorted(identity.ID_FLAW_RULES))
def test_each_id_flaw_breaks_exactly_its_rule(kind):
    day = date(2026, 11, 20)
    rng = identity.id_flaw_rng(5, "ZJ_RYJBXX", day)
    numbers = _numbers(300, date(1988, 2, 29))
    hits = [(n, identity.id_flaw(rng, n, day, _forced(kind))) for n in numbers]
    flawed = [(n, h) for n, h in hits if h is not None]
    assert flawed and all(h[0] == kind for _, h in flawed)
    for n, (_, value) in flawed:
        assert value != n
        result = citizen_id.check(value, day)
        assert result.failure == identity.ID_FLAW_RULES[kind], (kind, n, value, result)
        if identity.ID_FLAW_RULES[kind] is None:
            assert result.value == n and result.converted == (kind == "id_15_digit")
    if kind == "id_lowercase_x":  # only numbers that end in X can take it
        assert {n for n, _ in flawed} == {n for n in numbers if n.endswith("X")}
    else:
        assert len(flawed) == len(numbers)


def test_id_flaws_skip_numbers_they_do_not_fit():
    day = date(2026, 11, 20)
    rng = identity.id_flaw_rng(5, "x")
    born_2001 = _numbers(20, date(2001, 3, 4))
    assert all(identity.id_flaw(rng, n, day, _forced("id_15_digit")) is None for n in born_2001)
    assert all(identity.id_flaw(rng, n, day, _forced("id_fullwidth"), fixed_width=True) is None for n in born_2001)


def test_id_flaws_are_rare_seeded_and_one_draw_per_cell():
    day = date(2026, 11, 20)
    numbers = _numbers(20000, date(1975, 6, 1))

    def run(seed):
        rng = identity.id_flaw_rng(seed, "ZJ_RYJBXX", day)
        return [identity.id_flaw(rng, n, day) for n in numbers], rng

    first, rng_a = run(5)
    again, rng_b = run(5)
    assert first == again
    assert run(6)[0] != first
    kinds = Counter(h[0] for h in first if h)
    assert set(kinds) == set(identity.ID_FLAW_RULES), kinds
    assert sum(kinds.values()) < 0.01 * len(numbers)
    # A flaw draws more only when it is chosen, so the stream advances by one draw per cell otherwise: the
    # same stream with no flaws at all is exactly len(numbers) draws ahead.
    quiet = identity.id_flaw_rng(5, "ZJ_RYJBXX", day)
    none = identity.IdFlawRates(0, 0, 0, 0, 0, 0)
    assert all(identity.id_flaw(quiet, n, day, none) is None for n in numbers)
    fresh = identity.id_flaw_rng(5, "ZJ_RYJBXX", day)
    for _ in numbers:
        fresh.random()
    assert quiet.random() == fresh.random()
    # Each table (and day) has a stream of its own.
    assert identity.id_flaw_rng(5, "a").random() != identity.id_flaw_rng(5, "b").random()
