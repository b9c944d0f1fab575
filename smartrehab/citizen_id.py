"""GB 11643-1999 citizen identity numbers (公民身份号码): the one definition of the rule.

Every place that checks an ID number uses this module: the generator (``smartrehab.generate.identity``),
legacy ingestion (``spark_jobs.legacy.conform``, through the Spark SQL built here) and the tests.
``check(raw, as_of)`` is the rule in Python; the ``*_sql`` functions build the same rule as Spark SQL
text over a column, so ingestion runs it with Spark built-ins (no Python UDF) and
``tests/unit/test_citizen_id_sql.py`` proves the two agree on a table of cases.

The rule, in order:

1. **Normalise**: strip surrounding whitespace (ASCII white space, no-break space, the ideographic
   space U+3000); full-width digits ``０``-``９`` and ``Ｘ``/``ｘ`` to ASCII; a lower-case ``x`` to ``X``.
   A value that is empty after this is no value (emptiness is the ``required`` rule's business).
2. **Pattern** (``id_pattern``): 18 characters, 17 digits then a digit or ``X``; or 15 digits, the
   form issued before 1999 (6-digit region, ``YYMMDD`` birth date, 3-digit sequence, no check character).
3. **Check character** (``id_checksum``), 18-digit form only: ISO 7064 MOD 11-2, the sum of the first
   17 digits times the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, modulo 11, maps to 1 0 X 9 8 7 6 5 4 3 2.
4. **Birth date** (positions 7-14, ``YYYYMMDD``; ``19YYMMDD`` for the 15-digit form):
   a real calendar day (``id_birth_date``), not after the as-of day (``id_birth_future``), not before
   1900-01-01 (``id_birth_before_1900``).

A 15-digit number that passes is converted to its 18-digit form (``19`` inserted before the year, check
character computed) and reported as converted; the 18-digit form is the value kept (and pseudonymised).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from spark_jobs.common.sql import lit as _lit

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by the weighted sum modulo 11
EARLIEST_BIRTH = date(1900, 1, 1)
# Stripped from both ends: WHITESPACE for Python, the same characters as a Java regex class for Spark.
WHITESPACE = " \t\n\x0b\f\r\u00a0\u3000"
_WHITESPACE_CLASS = r"[ \t\n\x0B\f\r\u00A0\u3000]"
_STRIP_RE = rf"^{_WHITESPACE_CLASS}+|{_WHITESPACE_CLASS}+\z"
FULLWIDTH_FROM = "０１２３４５６７８９Ｘｘx"
FULLWIDTH_TO = "0123456789XXX"
_TRANSLATE = str.maketrans(FULLWIDTH_FROM, FULLWIDTH_TO)

# Failure codes, each the prefix of its quarantine rule (``<code>:<legacy column>``), in the order checked.
BAD_PATTERN = "id_pattern"
BAD_CHECK_CHAR = "id_checksum"
INVALID_BIRTH_DATE = "id_birth_date"
FUTURE_BIRTH_DATE = "id_birth_future"
BIRTH_BEFORE_1900 = "id_birth_before_1900"
FAILURES = {
    BAD_PATTERN: "is not a GB 11643 ID number (18 characters: 17 digits and a digit or X; or 15 digits)",
    BAD_CHECK_CHAR: "fails the GB 11643 check character (ISO 7064 MOD 11-2)",
    INVALID_BIRTH_DATE: "holds a birth date that is not a calendar day",
    FUTURE_BIRTH_DATE: "holds a birth date after the as-of day",
    BIRTH_BEFORE_1900: "holds a birth date before 1900-01-01",
}

_FORM_18 = "[0-9]{17}[0-9X]"
_FORM_15 = "[0-9]{15}"


@dataclass(frozen=True)
class IdCheck:
    """The result of ``check``: the 18-digit form (None when the pattern fails), whether it was converted
    from the 15-digit form, and the first rule broken (None when the number is valid)."""

    value: str | None
    converted: bool
    failure: str | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def check_char(first17: str) -> str:
    """The check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalise(raw: str | None) -> str | None:
    """Step 1 of the rule; None for no value."""
    if raw is None:
        return None
    n = raw.strip(WHITESPACE).translate(_TRANSLATE)
    return n or None


def to_18(id15: str) -> str:
    """The 18-digit form of a 15-digit number: ``19`` before the 2-digit year, then the check character."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_char(first17)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def check(raw: str | None, as_of: date | None = None) -> IdCheck | None:
    """The rule over one value; None when there is no value. ``as_of`` (default today) bounds the birth date."""
    n = normalise(raw)
    if n is None:
        return None
    as_of = as_of or date.today()
    converted = re.fullmatch(_FORM_15, n) is not None
    if not converted and re.fullmatch(_FORM_18, n) is None:
        return IdCheck(None, False, BAD_PATTERN)
    value = to_18(n) if converted else n
    if not converted and check_char(n[:17]) != n[17]:
        return IdCheck(value, False, BAD_CHECK_CHAR)
    birth = value[6:14]
    y, m, d = int(birth[:4]), int(birth[4:6]), int(birth[6:])
    if not (1 <= m <= 12 and 1 <= d <= _days_in_month(y, m)):
        failure = INVALID_BIRTH_DATE
    elif birth > f"{as_of:%Y%m%d}":
        failure = FUTURE_BIRTH_DATE
    elif birth < f"{EARLIEST_BIRTH:%Y%m%d}":
        failure = BIRTH_BEFORE_1900
    else:
        failure = None
    return IdCheck(value, converted, failure)


# ---- the same rule as Spark SQL text ------------------------------------------------------------------
def normalised_sql(col: str) -> str:
    """Step 1 over the SQL expression ``col``: null when empty. Ingestion computes it once per row, in its own
    projection, and hands the column to the functions below (each of which refers to it many times)."""
    stripped = f"regexp_replace({col}, {_lit(_STRIP_RE)}, '')"
    return f"nullif(translate({stripped}, {_lit(FULLWIDTH_FROM)}, {_lit(FULLWIDTH_TO)}), '')"


# The length test keeps Java's ``$`` (which also matches before a final line terminator) as strict as fullmatch.
def _is15(n: str) -> str:
    return f"(length({n}) = 15 AND {n} RLIKE {_lit(f'^{_FORM_15}$')})"


def _is18(n: str) -> str:
    return f"(length({n}) = 18 AND {n} RLIKE {_lit(f'^{_FORM_18}$')})"


def first17_sql(n: str) -> str:
    """The first 17 digits of the 18-digit form (``19`` inserted into a 15-digit number); null when the pattern
    fails. ``n`` is a normalised value (``normalised_sql``)."""
    return (f"CASE WHEN {_is18(n)} THEN substring({n}, 1, 17) "
            f"WHEN {_is15(n)} THEN concat(substring({n}, 1, 6), '19', substring({n}, 7, 9)) END")


def check_char_sql(first17: str) -> str:
    """The check character of the 17-digit SQL expression ``first17`` (null when it is null)."""
    total = " + ".join(f"CAST(substring({first17}, {i + 1}, 1) AS INT) * {w}" for i, w in enumerate(WEIGHTS))
    return f"substring({_lit(CHECK_CHARS)}, (({total}) % 11) + 1, 1)"


def value_sql(n: str, first17: str) -> str:
    """The 18-digit form (null when the pattern fails), from the normalised value and its ``first17_sql``."""
    return (f"CASE WHEN {first17} IS NULL THEN NULL WHEN length({n}) = 18 THEN {n} "
            f"ELSE concat({first17}, {check_char_sql(first17)}) END")


def converted_sql(n: str) -> str:
    """Whether the value was converted from the 15-digit form (null when there is no value)."""
    return f"CASE WHEN {n} IS NULL THEN NULL ELSE coalesce({_is15(n)}, false) END"


def failure_sql(n: str, first17: str, as_of: str = "current_date()") -> str:
    """The failure code of the rule (null when valid or when there is no value). ``as_of`` is an SQL date."""
    birth = f"substring({first17}, 7, 8)"
    y, m, d = (f"CAST(substring({first17}, {p}, {w}) AS INT)" for p, w in ((7, 4), (11, 2), (13, 2)))
    leap = f"({y} % 4 = 0 AND ({y} % 100 <> 0 OR {y} % 400 = 0))"
    days = f"CASE WHEN {m} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END WHEN {m} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
    return (f"CASE WHEN {n} IS NULL THEN NULL "
            f"WHEN {first17} IS NULL THEN {_lit(BAD_PATTERN)} "
            f"WHEN length({n}) = 18 AND substring({n}, 18, 1) <> {check_char_sql(first17)} "
            f"THEN {_lit(BAD_CHECK_CHAR)} "
            f"WHEN NOT ({m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {days}) THEN {_lit(INVALID_BIRTH_DATE)} "
            f"WHEN {birth} > date_format({as_of}, 'yyyyMMdd') THEN {_lit(FUTURE_BIRTH_DATE)} "
            f"WHEN {birth} < {_lit(f'{EARLIEST_BIRTH:%Y%m%d}')} THEN {_lit(BIRTH_BEFORE_1900)} END")
