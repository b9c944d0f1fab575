from __future__ import annotations

import hashlib
import hmac
import random
from datetime import date

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
