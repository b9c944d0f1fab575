"""Bronze rows of one legacy table -> typed, decoded, pseudonymised silver rows + quarantine.

A pure transform: ``conform(bronze_df, table, catalog, key, parent_keys)`` returns every input
row once, with its silver columns and ``_ok``. A rejected row (``_ok`` false) carries every rule
it broke (``_rules``), a message naming file, line, column, value and rule, and its raw values; an
accepted row carries the clear values of its direct identifiers (``_identities``). The loader
writes the result once, split on ``_ok``, so nothing is dropped and no row is computed twice.

The expressions are written as Spark SQL text (``spark_jobs.common.sql``) and handed to Spark a
whole projection at a time: built with the Column API, a table's plan took 5,000 to 13,000 Py4J
calls and 0.4-1 s of the driver before a single row was read (bench/README.md).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smartrehab import citizen_id
from smartrehab.catalog import DURATION_UNITS, Catalog, CrossFieldRule, Item, LegacyTable
from spark_jobs.common.pseudonym import pseudonym_sql
from spark_jobs.common.sql import ident, lit

META = ["_load_id", "_source_file", "_file_sha256", "_source_row", "_row_sha256", "_parse_error", "_raw_line"]
DATE_PATTERNS = ("yyyyMMdd", "yyyy-M-d", "yyyy/M/d", "yyyy'年'M'月'd'日'", "yyyy.M.d")
DATETIME_PATTERNS = ("yyyy-M-d H:m:s", "yyyyMMddHHmmss", "yyyy/M/d H:m:s", "yyyy-M-d'T'H:m:s", "yyyy-M-d H:m",
                     "yyyyMMdd")


INTEGER_RE = lit(r"^[+-]?\d{1,18}$")
DECIMAL_RE = lit(r"^[+-]?\d{1,14}(\.\d+)?$")


# Per accepted row, the clear values of its direct identifiers (for silver.restricted_identity).
IDENTITIES_TYPE = "array<struct<pseudonym:string,domain:string,item_code:string,clear_value:string>>"


def _normalised(col: str) -> str:
    """Full-width digits and punctuation to ASCII, trimmed; empty becomes null."""
    return f"nullif(trim(translate({col}, {lit('０１２３４５６７８９－／：．')}, {lit('0123456789-/:.')})), '')"


def _parse(item: Item, v: str) -> str:
    t = item.data_type
    if t == "integer":
        return f"CASE WHEN {v} RLIKE {INTEGER_RE} THEN CAST({v} AS BIGINT) END"
    if t == "decimal":
        return f"CASE WHEN {v} RLIKE {DECIMAL_RE} THEN CAST({v} AS DECIMAL(18,4)) END"
    if t == "date":
        return "coalesce(" + ", ".join(f"try_to_date({v}, {lit(p)})" for p in DATE_PATTERNS) + ")"
    if t == "datetime":
        return "coalesce(" + ", ".join(f"try_to_timestamp({v}, {lit(p)})" for p in DATETIME_PATTERNS) + ")"
    return v


def converted_column(item: Item) -> str:
    """The silver column that says an ID number was delivered in the 15-digit form and converted to 18 digits."""
    return item.silver_column.removesuffix("_pk") + "_from_15_digits"


def _id_columns(df: DataFrame, items: list[Item], as_of: date | None) -> DataFrame:
    """Per ID-number item, the GB 11643 rule (``smartrehab.citizen_id``) in three narrow projections, so each
    step is computed once per row and the final projection refers to short columns: ``_idn_<col>`` the
    normalised value, ``_id17_<col>`` its first 17 digits in the 18-digit form, ``_idv_<col>`` that form and
    ``_idf_<col>`` the failure code (null when valid or empty)."""
    if not items:
        return df
    as_of_sql = lit(as_of) if as_of else "current_date()"
    n = {it.legacy_column: ident(f"_idn_{it.legacy_column}") for it in items}
    f17 = {it.legacy_column: ident(f"_id17_{it.legacy_column}") for it in items}
    df = df.selectExpr("*", *[f"{citizen_id.normalised_sql(ident(f'_raw_{c}'))} AS {n[c]}" for c in n])
    df = df.selectExpr("*", *[f"{citizen_id.first17_sql(n[c])} AS {f17[c]}" for c in n])
    return df.selectExpr("*", *[x for c in n for x in (
        f"{citizen_id.value_sql(n[c], f17[c])} AS {ident(f'_idv_{c}')}",
        f"{citizen_id.failure_sql(n[c], f17[c], as_of_sql)} AS {ident(f'_idf_{c}')}")])


def _when(cond: str, value: str) -> str:
    return f"CASE WHEN {cond} THEN {value} END"


def _concat(*parts: str) -> str:
    return f"concat({', '.join(parts)})"


def _as_time(item: Item, typed: str, other: Item) -> str:
    """``typed`` for comparison with ``other``: a datetime compared with a date is compared as its date."""
    return f"to_date({typed})" if item.data_type == "datetime" and other.data_type == "date" else typed


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _cross_field(rule: CrossFieldRule, table: LegacyTable, typed: dict[str, str], raw: dict[str, str]) -> tuple[str, str]:
    """The condition under which a row breaks ``rule`` (catalog/row_rules.yaml) and the message saying why.
    A rule applies only when every column it names holds a readable value."""
    p = rule.params
    items = {c: table.item(c) for c in rule.columns}
    shown = {c: _concat(lit(f"{c}='"), f"coalesce({raw[c]}, '')", lit("'")) for c in rule.columns}
    present = " AND ".join(f"({typed[c]}) IS NOT NULL" for c in rule.columns)
    where = "catalog/row_rules.yaml"
    if rule.rule == "not_before":
        col, than = p["column"], p["than"]
        a, b = _as_time(items[col], typed[col], items[than]), _as_time(items[than], typed[than], items[col])
        return (f"{present} AND ({a}) < ({b})",
                _concat(shown[col], lit(" is before "), shown[than],
                        lit(f" ({col} must not be before {than}; rule not_before, {where})")))
    if rule.rule == "duration":
        start, end, value = p["start"], p["end"], p["value"]
        seconds = DURATION_UNITS[p["unit"]]
        span = (f"((unix_timestamp(CAST({typed[end]} AS TIMESTAMP)) - unix_timestamp(CAST({typed[start]} AS TIMESTAMP)))"
                f" / {seconds})")
        tolerance = float(p.get("tolerance", 0))
        return (f"{present} AND abs({span} - ({typed[value]})) > {_num(tolerance)}",
                _concat(shown[value], lit(f" {p['unit']} does not match "), shown[start], lit(" to "), shown[end],
                        lit(" ("), f"CAST(round({span}, 1) AS STRING)",
                        lit(f" {p['unit']}, tolerance {_num(tolerance)}; rule duration, {where})")))
    birth, at = p["birth"], p["at"]
    low, high = float(p.get("min", 0)), float(p.get("max", 150))
    age = f"floor(months_between(to_date({typed[at]}), to_date({typed[birth]})) / 12)"
    return (f"{present} AND NOT ({age} BETWEEN {_num(low)} AND {_num(high)})",
            _concat(shown[birth], lit(" gives an age of "), f"CAST({age} AS STRING)", lit(" on "), shown[at],
                    lit(f", outside {_num(low)}-{_num(high)} (rule age, {where})")))


def conform(bronze: DataFrame, table: LegacyTable, catalog: Catalog, key: str,
            parent_keys: dict[str, DataFrame] | None = None, small: bool = False,
            as_of: date | None = None) -> DataFrame:
    """``bronze`` holds the rows of one delivered file. ``parent_keys`` maps a referencing legacy column to a
    one-column DataFrame ``k`` holding the valid silver values (pseudonymised where the column is a direct
    identifier), each value once. ``small`` (a file of a few thousand rows) changes only the plan, not the
    result. ``as_of`` bounds the birth dates in citizen ID numbers (default: the day the job runs)."""
    parent_keys = parent_keys or {}
    # Raw legacy columns get a prefix: Spark is case-insensitive, and a legacy column (HBSAG)
    # may share its name with its silver column (hbsag).
    raw_cols = [ident(f"_raw_{c}") for c in table.columns]
    df = bronze.selectExpr(*META, *[f"{ident(c)} AS {ident(f'_raw_{c}')}" for c in table.columns])
    df = _id_columns(df, [it for it in table.items if it.data_type == "id_number"], as_of)
    rules: list[str] = []
    msgs: list[str] = []
    where = "concat(_source_file, ' line ', CAST(_source_row AS STRING), ': ')"
    parse_err = "_parse_error IS NOT NULL"
    readable = "_parse_error IS NULL"
    rules.append(_when(parse_err, "_parse_error"))
    msgs.append(_when(parse_err, _concat(where, lit("row could not be read ("), "_parse_error", lit("): "),
                                         "substring(coalesce(_raw_line, ''), 1, 120)")))

    def fail(cond: str, rule: str, message: str) -> None:
        rules.append(_when(cond, lit(rule)))
        msgs.append(_when(cond, message))

    silver_cols: list[str] = []
    identity_cols: list[tuple[Item, str]] = []
    limits = catalog.row_rules
    typed_of: dict[str, str] = {}
    for it in table.items:
        raw = ident(f"_raw_{it.legacy_column}")
        v = _normalised(raw)
        typed = ident(f"_idv_{it.legacy_column}") if it.data_type == "id_number" else _parse(it, v)
        typed_of[it.legacy_column] = typed
        shown = _concat(lit(f"{it.legacy_column}='"), f"coalesce({raw}, '')", lit("'"))
        col = ident(it.silver_column)
        # Field limits (catalog/row_rules.yaml): free text within its catalog length, numbers within hard bounds.
        if it.data_type in limits.text_types:
            fail(f"{readable} AND length({v}) > {it.length}", f"field_length:{it.legacy_column}",
                 _concat(where, lit(f"{it.legacy_column} is "), f"CAST(length({v}) AS STRING)",
                         lit(f" characters long, over its limit of {it.length} (catalog length; rule field_length, "
                             "catalog/row_rules.yaml): '"), f"substring({v}, 1, 40)", lit("...'")))
        bounds = limits.range_of(table.name, it.legacy_column)
        if bounds is not None:
            low, high = (_num(b) for b in bounds)
            fail(f"{readable} AND ({typed}) IS NOT NULL AND NOT (({typed}) BETWEEN {low} AND {high})",
                 f"field_range:{it.legacy_column}",
                 _concat(where, shown, lit(f" is outside {low}-{high} (rule field_range, catalog/row_rules.yaml)")))
        if it.data_type in ("integer", "decimal", "date", "datetime"):
            fail(f"{readable} AND {v} IS NOT NULL AND ({typed}) IS NULL", f"type:{it.legacy_column}",
                 _concat(where, shown, lit(f" is not a valid {it.data_type}")))
        if it.legacy_column in table.key or it.legacy_column == table.version_column:
            fail(f"{readable} AND {v} IS NULL", f"required:{it.legacy_column}",
                 _concat(where, lit(f"{it.legacy_column} is empty but identifies the record")))
        if it.data_type == "code":
            ct = catalog.code_tables[it.code_table]
            codes = ", ".join(lit(c) for c in ct.labels)
            fail(f"{readable} AND {v} IS NOT NULL AND NOT ({v} IN ({codes}))", f"code_table:{it.legacy_column}",
                 _concat(where, shown, lit(f" is not in code table {ct.name} ({ct.standard})")))
            labels = ", ".join(f"{lit(c)}, {lit(label)}" for c, (label, _) in ct.labels.items())
            silver_cols.append(f"{v} AS {col}")
            silver_cols.append(f"map({labels})[{v}] AS {ident(it.silver_column + '_label')}")
            continue
        if it.data_type == "id_number":
            # One rule per ID: the first the number breaks (citizen_id.FAILURES, e.g. id_birth_date:SFZHM).
            failure = ident(f"_idf_{it.legacy_column}")
            text = " ".join(f"WHEN {lit(code)} THEN {lit(f'{it.legacy_column} {why}')}"
                            for code, why in citizen_id.FAILURES.items())
            rules.append(_when(readable, f"concat({failure}, {lit(':' + it.legacy_column)})"))
            msgs.append(_when(f"{readable} AND {failure} IS NOT NULL",
                              _concat(where, f"CASE {failure} {text} END")))
            silver_cols.append(f"{citizen_id.converted_sql(ident(f'_idn_{it.legacy_column}'))} "
                               f"AS {ident(converted_column(it))}")
        if it.is_direct_identifier:
            silver_cols.append(f"{pseudonym_sql(key, it.silver_column, typed)} AS {col}")
            identity_cols.append((it, typed))
            continue
        silver_cols.append(f"{typed} AS {col}")
    # Cross-field rules (catalog/row_rules.yaml): end not before start, durations, plausible ages.
    raw_of = {c: ident(f"_raw_{c}") for c in table.columns}
    for rule in limits.rules_of(table.name):
        cond, why = _cross_field(rule, table, typed_of, raw_of)
        fail(f"{readable} AND {cond}", rule.code, _concat(where, why))
    # Exact duplicates inside the file (the same line, by its checksum): the first copy wins, later copies are
    # quarantined. The first copy of each checksum comes from a window over the file's rows when the file is
    # small (within the one job), or else from a narrow aggregate of the checksums broadcast back, so that the
    # rows of a big file are never shuffled.
    if small:
        df = df.selectExpr("*", _when(readable, "min(_source_row) OVER (PARTITION BY _row_sha256)") + " AS _dup_of")
    else:
        firsts = (bronze.where(readable).groupBy("_row_sha256")
                  .agg(F.expr("count(1) AS _copies"), F.expr("min(_source_row) AS _dup_of"))
                  .where("_copies > 1").drop("_copies"))
        df = df.join(firsts.hint("broadcast"), "_row_sha256", "left")
    dup = f"{readable} AND _source_row > coalesce(_dup_of, _source_row)"
    fail(dup, "duplicate_row", _concat(where, lit("exact duplicate of line "), "CAST(_dup_of AS STRING)"))

    # The 18-digit ID values stay for _identities below.
    id_values = [ident(f"_idv_{it.legacy_column}") for it in table.items if it.data_type == "id_number"]
    df = df.selectExpr(*META, *raw_cols, *id_values, *silver_cols,
                       f"filter(array({', '.join(rules)}), x -> x IS NOT NULL) AS _rules",
                       f"filter(array({', '.join(msgs)}), x -> x IS NOT NULL) AS _messages")
    # Orphan references, in pseudonym space.
    for ref, parent in parent_keys.items():
        col = ident(table.item(ref).silver_column)
        flag = ident(f"_ref_ok_{ref}")
        df = df.join(parent.selectExpr(f"k AS {col}", f"true AS {flag}"), on=table.item(ref).silver_column, how="left")
        orphan = f"({col} IS NOT NULL AND {flag} IS NULL AND size(_rules) = 0)"
        message = _concat(where, lit(f"{ref} points to no record of {table.references[ref]}"))
        kept = [ident(c) for c in df.columns if c not in ("_rules", "_messages", f"_ref_ok_{ref}")]
        df = df.selectExpr(*kept, f"CASE WHEN {orphan} THEN array_append(_rules, {lit(f'orphan_reference:{ref}')}) "
                                  f"ELSE _rules END AS _rules",
                           f"CASE WHEN {orphan} THEN array_append(_messages, {message}) ELSE _messages END AS _messages")
    good = "size(_rules) = 0"
    silver_names = [ident(c) for c in df.columns if not c.startswith("_")]
    ids = [f"named_struct('pseudonym', {ident(it.silver_column)}, 'domain', {lit(it.silver_column)}, "
           f"'item_code', {lit(it.item_code)}, 'clear_value', upper(trim({typed})))" for it, typed in identity_cols]
    raw_json = ", ".join(f"{lit(c)}, {ident(f'_raw_{c}')}" for c in table.columns)
    return df.selectExpr(
        *silver_names, "_load_id", "_source_file", "_file_sha256", "_source_row", f"{good} AS _ok",
        f"{lit(table.name)} AS _legacy_table", "_rules", "_raw_line",
        _when(f"NOT ({good})", "concat_ws('; ', _messages)") + " AS _message",
        _when(f"NOT ({good})", f"to_json(named_struct({raw_json}))") + " AS _raw_values",
        (_when(good, f"filter(array({', '.join(ids)}), x -> x.pseudonym IS NOT NULL)") if ids
         else f"CAST(NULL AS {IDENTITIES_TYPE})") + " AS _identities")
