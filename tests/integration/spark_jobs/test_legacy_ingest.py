"""Legacy ingestion end to end on generated deliveries: nothing lost, every flaw caught, idempotent."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from pyspark.sql import functions as F

from smartrehab import citizen_id
from smartrehab.catalog import load_catalog
from smartrehab.checksum import file_sha256
from smartrehab.generate import identity
from smartrehab.spark import CODEGEN_FACTORY_MODE
from spark_jobs.common.pseudonym import pseudonym
from spark_jobs.legacy import ingest
from spark_jobs.legacy.conform import conform
from spark_jobs.legacy.parse import iter_rows

pytestmark = pytest.mark.spark

# Flaws that must put the row they hit into quarantine, with this rule prefix.
QUARANTINED = {"bad_id_checksum": "id_checksum", "unknown_code": "code_table", "orphan_reference": "orphan_reference",
               "duplicate_row": "duplicate_row", "truncated_file": "truncated",
               # GB 11643 flaws beyond the check character (smartrehab.generate.identity.ID_FLAW_RULES)
               **{k: rule for k, rule in identity.ID_FLAW_RULES.items() if rule},
               # field limits and cross-field rules (catalog/row_rules.yaml); a cross_field flaw names its rule
               "oversized_text": "field_length", "cross_field": None}
# ID-number flaws that are normalised, not quarantined.
ID_ACCEPTED = sorted(k for k, rule in identity.ID_FLAW_RULES.items() if rule is None)


def _flaws(deliveries):
    for d in deliveries:
        for f in d.flaws:
            yield d, f


def test_every_file_balances(legacy_loaded, spark):
    deliveries, report = legacy_loaded
    assert report.balanced
    rec = spark.table(ingest.RECONCILIATION).collect()
    generated = {f"{d.folder.name}/{p.name}": d.rows[t] for d in deliveries for t, p in d.files.items()}
    assert {r["source_file"] for r in rec} == set(generated)
    for r in rec:
        assert r["source_rows"] == generated[r["source_file"]], r["source_file"]
        assert r["source_rows"] == r["accepted_rows"] + r["quarantined_rows"], r["source_file"]
        assert r["balanced"]
    # The quarantine table holds exactly the rows the reconciliation says were quarantined.
    q = spark.table(ingest.QUARANTINE).groupBy("source_file").count().collect()
    assert {x["source_file"]: x["count"] for x in q} == {r["source_file"]: r["quarantined_rows"]
                                                          for r in rec if r["quarantined_rows"]}


def test_each_loaded_file_says_where_its_time_went(legacy_loaded):
    _, report = legacy_loaded
    loaded = [f for f in report.files if f.status == "loaded"]
    assert loaded
    for f in loaded:
        assert set(f.phases) == set(ingest.PHASES), (f.file, f.phases)
        assert all(v >= 0 for v in f.phases.values()) and sum(f.phases.values()) <= f.seconds + 0.01, f
    totals = report.phase_seconds()
    assert totals["conform"] > 0 and totals["silver"] > 0
    assert sum(totals.values()) <= sum(f.seconds for f in loaded) + 0.1 * len(loaded)
    # The run-level commits (bronze for every file at once among them) are timed once for the run.
    assert set(report.run_phases) == set(ingest.RUN_PHASES) and report.run_phases["bronze"] > 0


def test_bronze_holds_every_source_line_once_with_its_raw_values(legacy_loaded, spark, settings):
    """One bronze table for every legacy table: each delivered line once, raw values keyed by legacy column."""
    deliveries, _ = legacy_loaded
    counts = {r["_source_file"]: r["count"] for r in spark.table(ingest.BRONZE).groupBy("_source_file").count().collect()}
    assert counts == {f"{d.folder.name}/{p.name}": d.rows[t] for d in deliveries for t, p in d.files.items()}
    assert spark.table(ingest.BRONZE).groupBy("_file_sha256", "_source_row").count().where("count > 1").count() == 0
    catalog = load_catalog(settings.catalog_dir)
    person = catalog.table("ZJ_RYJBXX")
    first = deliveries[0]
    path = first.files["ZJ_RYJBXX"]
    line = next(r for r in iter_rows(path, person) if r.values is not None and not r.error)
    row = (spark.table(ingest.BRONZE).where(F.col("_legacy_table") == "ZJ_RYJBXX")
           .where(F.col("_source_file") == f"{first.folder.name}/{path.name}").where(F.col("_source_row") == line.line)
           .select("_raw", "_row_sha256", "_delivery_day").first())
    assert row["_raw"] == dict(zip(person.columns, line.values, strict=True))
    assert row["_row_sha256"] == line.sha256 and row["_delivery_day"] == first.day
    # A line that could not be read keeps its text and rule, and no values.
    unread = spark.table(ingest.BRONZE).where(F.col("_parse_error").isNotNull()).select("_raw", "_raw_line").collect()
    assert unread and all(r["_raw"] is None and r["_raw_line"] for r in unread)


def test_small_days_load_with_interpreted_projections(legacy_loaded, spark, settings):
    """The tests' threshold (1 MiB, tests/conftest.py) sends the full extract (about 4 MiB) through generated
    code and the incremental day (under 0.1 MiB) through interpreted projections: both paths load the data
    every other test here checks."""
    deliveries, report = legacy_loaded
    assert settings.legacy_interpreted_max_mib == 1
    assert report.projections == {deliveries[0].day.isoformat(): "generated",
                                  deliveries[1].day.isoformat(): "interpreted"}
    assert spark.conf.get(CODEGEN_FACTORY_MODE, None) != "NO_CODEGEN", "the run left its setting behind"


def test_each_injected_flaw_is_quarantined_with_its_rule(legacy_loaded, spark):
    deliveries, _ = legacy_loaded
    q = {(r["source_file"], r["source_row"]): r["rules"] for r in
         spark.table(ingest.QUARANTINE).select("source_file", "source_row", "rules").collect()}
    kinds_seen = set()
    for d, f in _flaws(deliveries):
        if f.kind not in QUARANTINED:
            continue
        rules = q.get((f"{d.folder.name}/{f.file}", f.line))
        assert rules is not None, f"{f.kind} at {d.folder.name}/{f.file} line {f.line} was not quarantined"
        if f.kind == "orphan_reference" and any(not r.startswith("orphan") for r in rules):
            continue  # another flaw on the same row is reported; references are checked on clean rows only
        assert any(r.startswith(QUARANTINED[f.kind] or f.detail) for r in rules), (f, rules)
        kinds_seen.add(f.kind)
    assert {"unknown_code", "duplicate_row", "orphan_reference", "bad_id_checksum", "oversized_text",
            "cross_field"} <= kinds_seen
    # At least one ID number with an impossible, future or pre-1900 birth date is among them.
    assert kinds_seen & {k for k, rule in identity.ID_FLAW_RULES.items() if rule}, kinds_seen


def test_id_numbers_in_old_forms_reach_silver_converted_and_flagged(legacy_loaded, spark, settings):
    """A 15-digit, full-width or lower-case-x ID number is accepted: silver holds the pseudonym of its 18-digit
    form (the same as the clean number's) and ``<x>_from_15_digits`` says whether it was converted."""
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    key = settings.secret("pseudonym_key")
    quarantined = {(r["source_file"], r["source_row"]) for r in
                   spark.table(ingest.QUARANTINE).select("source_file", "source_row").collect()}
    checked = {}
    for d, f in _flaws(deliveries):
        if f.kind not in ID_ACCEPTED:
            continue
        source = f"{d.folder.name}/{f.file}"
        if (source, f.line) in quarantined:
            continue  # another flaw on the row
        table = catalog.table(f.file.split(".")[0])
        item = table.item(f.column)
        flag = item.silver_column.removesuffix("_pk") + "_from_15_digits"
        row = (spark.table(f"silver.{table.silver_table}").where(F.col("_source_file") == source)
               .where(F.col("_source_row") == f.line).select(item.silver_column, flag).first())
        assert row is not None, f"{f.kind} at {source} line {f.line} is neither in silver nor in quarantine"
        assert row[item.silver_column] == pseudonym(key, item.silver_column, f.detail), f
        assert row[flag] is (f.kind == "id_15_digit"), f
        checked[f.kind] = checked.get(f.kind, 0) + 1
    assert checked.get("id_15_digit", 0) >= 1, checked
    # Every 18-digit form in the restricted table is a valid number (the 15-digit ones were converted).
    clear = [r["clear_value"] for r in spark.table(ingest.IDENTITY).where(F.col("domain") == "id_number_pk").collect()]
    assert clear and all(len(v) == 18 and citizen_id.check(v).ok for v in clear)


def test_messages_name_file_line_and_rule(legacy_loaded, spark):
    rows = spark.table(ingest.QUARANTINE).select("source_file", "source_row", "rules", "message").collect()
    assert rows
    for r in rows:
        assert f"{r['source_file']} line {r['source_row']}" in r["message"], r
        assert r["rules"]


def test_normalised_values_reach_silver_correctly(legacy_loaded, spark, settings):
    """Mixed date formats and full-width digits are read as the value the source meant."""
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    by_table: dict[str, list] = {}
    for d, f in _flaws(deliveries):
        if f.kind not in ("mixed_date_format", "fullwidth_digits"):
            continue
        table = next(t for t in catalog.tables.values() if f.file.startswith(t.name + "."))
        if table.item(f.column).data_type == "date":
            by_table.setdefault(table.name, []).append((f"{d.folder.name}/{f.file}", f))
    checked = 0
    for name, flaws in by_table.items():  # one query per table, not one per flaw
        table = catalog.table(name)
        key_col = table.item(table.key[0]).silver_column
        columns = sorted({table.item(f.column).silver_column for _, f in flaws})
        rows = (spark.table(f"silver.{table.silver_table}")
                .where(F.col("_source_row").isin(sorted({f.line for _, f in flaws})))
                .select(key_col, "_source_file", "_source_row", *columns).collect())
        found = {(r[key_col], r["_source_file"], r["_source_row"]): r for r in rows}
        for source_file, f in flaws:
            row = found.get((f.key, source_file, f.line))
            if row is None:
                continue  # the row also had a flaw that quarantined it
            value = row[table.item(f.column).silver_column]
            assert value.strftime("%Y%m%d") == f.detail, (f, value)
            checked += 1
    assert checked >= 5


def test_correction_in_later_file_keeps_history(legacy_loaded, spark, settings):
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    corrections = [f for d in deliveries[1:] for f in d.flaws if f.kind == "correction"]
    assert corrections
    verified = 0
    for f in corrections:
        table = next(t for t in catalog.tables.values() if f.file.startswith(t.name + "."))
        key_col = table.item(table.key[0]).silver_column
        versions = spark.table(f"silver.{table.silver_table}").filter(F.col(key_col) == f.key) \
            .orderBy("valid_from").collect()
        if len(versions) < 2:
            continue  # the corrected or original row was quarantined for an injected flaw
        assert [v["is_current"] for v in versions] == [False] * (len(versions) - 1) + [True]
        assert versions[0]["valid_to"] == versions[1]["valid_from"]
        verified += 1
    assert verified >= 1


def test_rerun_changes_nothing(legacy_loaded, spark, settings):
    def snapshot():
        return {t: spark.table(t).count() for t in ("silver.person", "silver.admission", "silver.zone_placement",
                                                     ingest.QUARANTINE, ingest.RECONCILIATION)}

    before = snapshot()
    again = ingest.run(spark, settings)
    assert {f.status for f in again.files} == {"skipped_already_loaded"}
    assert snapshot() == before
    events = spark.table(ingest.FILE_EVENTS).filter(F.col("load_id") == again.load_id).count()
    assert events == len(again.files)


def test_direct_identifiers_leave_silver_only_as_pseudonyms(legacy_loaded, spark, settings):
    id_number = re.compile(r"\b\d{17}[\dX]\b")
    phone = re.compile(r"\b1[3-9]\d{9}\b")
    for t in ("silver.person", "silver.admission", "silver.zone_placement"):
        df = spark.table(t)
        strings = [c for c, typ in df.dtypes if typ == "string"]
        for row in df.select(*strings).limit(500).collect():
            text = json.dumps(row.asDict(), ensure_ascii=False)
            assert not id_number.search(text) and not phone.search(text), (t, text[:200])
    key = settings.secret("pseudonym_key")
    ident = spark.table(ingest.IDENTITY).filter(F.col("domain") == "id_number_pk").limit(20).collect()
    assert ident
    for r in ident:
        assert pseudonym(key, r["domain"], r["clear_value"]) == r["pseudonym"]
    # The person pseudonym is the same in every table (it joins).
    orphans = spark.table("silver.admission").join(spark.table("silver.person"), "person_pk", "left_anti").count()
    assert orphans == 0


def test_retry_of_a_file_after_a_crash_changes_nothing(legacy_loaded, spark, settings):
    """A run that died after the bronze append but before registering its files: loading a file again
    must not append its bronze rows twice nor add silver versions."""
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    first = deliveries[0]
    table = catalog.table("ZJ_RSDJ")
    path = first.files["ZJ_RSDJ"]

    def counts():
        return (spark.table(ingest.BRONZE).count(), spark.table("silver.admission").count())

    before = counts()
    sha, res = ingest.load_file(spark, settings, catalog, table, path, "Lretry", settings.secret("pseudonym_key"),
                                already=set())
    assert res.status == "loaded" and res.source_rows == first.rows["ZJ_RSDJ"]
    assert res.inserted_versions == 0
    assert ingest.append_bronze(spark, settings, catalog, "Lretry", [(first.day, sha, table.name)]) == 0
    assert counts() == before
    shutil.rmtree(settings.var_dir / "staging" / "Lretry", ignore_errors=True)


def test_small_and_big_file_plans_conform_alike(legacy_loaded, spark, settings):
    """A small file is conformed with a window for its duplicates, a big one with a broadcast aggregate of
    line checksums: on the same file (with duplicate lines) both give every row the same verdict."""
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    first = deliveries[0]
    name = next(f.file.split(".")[0] for f in first.flaws if f.kind == "duplicate_row")
    table, path = catalog.table(name), first.files[name]
    sha = file_sha256(path)
    ingest._stage(settings, "Lplans", table, path, sha, iter_rows(path, table))
    staged = ingest.read_staged(spark, settings, "Lplans", table, sha)
    parents = {c: spark.createDataFrame([], "k string") for c in table.references}
    verdicts = [sorted((r["_source_row"], r["_ok"], tuple(r["_rules"]), r["_message"]) for r in
                       conform(staged, table, catalog, settings.secret("pseudonym_key"), parents, small=small)
                       .select("_source_row", "_ok", "_rules", "_message").collect()) for small in (True, False)]
    assert verdicts[0] == verdicts[1]
    assert any("duplicate_row" in rules for _, _, rules, _ in verdicts[0])
    shutil.rmtree(settings.var_dir / "staging" / "Lplans", ignore_errors=True)


def test_multi_line_free_text_reaches_silver_whole(legacy_loaded, spark, settings):
    """A remark or an address typed over two lines (a quoted CSV field holding a line break) is one record: it
    lands in silver with its line break (an address as the pseudonym of the whole value), at the physical
    line it starts on."""
    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    key = settings.secret("pseudonym_key")
    quarantined = {(r["source_file"], r["source_row"]) for r in
                   spark.table(ingest.QUARANTINE).select("source_file", "source_row").collect()}
    checked = 0
    for d, f in _flaws(deliveries):
        source = f"{d.folder.name}/{f.file}"
        if f.kind != "multiline_text" or (source, f.line) in quarantined:
            continue
        table = catalog.table(f.file.split(".")[0])
        item = table.item(f.column)
        key_col = table.item(table.key[0]).silver_column
        row = (spark.table(f"silver.{table.silver_table}").where(F.col("_source_file") == source)
               .where(F.col("_source_row") == f.line).select(key_col, item.silver_column).first())
        assert row is not None, f
        expected = pseudonym(key, item.silver_column, f.detail) if item.is_direct_identifier else f.detail
        assert row[item.silver_column] == expected and "\r\n" in f.detail, f
        checked += 1
    assert checked >= 5


def _clean_rows(delivery, table, n, spark, secret):
    """The first ``n`` records of a delivered file that carry no injected flaw and whose references resolve in
    silver (so that only the rule under test can reject them)."""
    path = delivery.files[table.name]
    flagged = {f.line for f in delivery.flaws if f.file == path.name}
    known = {"RYBH": {r[0] for r in spark.table("silver.person").select("person_pk").collect()},
             "RSBH": {r[0] for r in spark.table("silver.admission").select("admission_id").collect()}}
    out = []
    for r in iter_rows(path, table):
        if r.values is None or r.line in flagged:
            continue
        row = dict(zip(table.columns, r.values, strict=True))
        if all((pseudonym(secret, "person_pk", row[c]) if c == "RYBH" else row[c]) in known[c]
               for c in table.references if c in known):
            out.append(row)
    return out[:n]


def test_field_limits_and_cross_field_rules_quarantine_with_file_line_and_rule(legacy_loaded, spark, settings):
    """catalog/row_rules.yaml, enforced: a 200,000-character name, a term out of its hard range, an age of 5, a
    release before the admission, a visit that ends before it starts and a duration that does not match its
    times are quarantined, each with the rule and a message naming file and physical line; the untouched rows
    of the same files (one with a two-line remark before the bad rows) are accepted."""
    from smartrehab.generate.legacy import render, write_file

    deliveries, _ = legacy_loaded
    catalog = load_catalog(settings.catalog_dir)
    first = deliveries[0]
    secret = settings.secret("pseudonym_key")
    parents = ingest.ParentKeys(spark)
    folder = settings.var_dir / "rules-test" / "20990101"
    folder.mkdir(parents=True, exist_ok=True)

    def day_before(v: str, days: int) -> str:
        from datetime import datetime, timedelta

        if len(v) == 8:
            return (datetime.strptime(v, "%Y%m%d") - timedelta(days=days)).strftime("%Y%m%d")
        return (datetime.strptime(v, "%Y-%m-%d %H:%M:%S") - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")

    def edited(row, table, n, **changes):
        return {**row, table.key[0]: f"{row[table.key[0]]}R{n}", **changes}

    cases = {}
    person = catalog.table("ZJ_RYJBXX")
    p = _clean_rows(first, person, 3, spark, secret)
    cases[person.name] = [(p[0], []),
                          (edited(p[1], person, 1, XM="张" * 200_000), ["field_length:XM"]),
                          (edited(p[2], person, 2, CSRQ=day_before(p[2]["GXSJ"][:10].replace("-", ""), 5 * 365)),
                           ["age:CSRQ"])]
    admission = catalog.table("ZJ_RSDJ")
    a = [r for r in _clean_rows(first, admission, 400, spark, secret) if r["JCRQ"]][:2] + _clean_rows(first, admission, 1, spark, secret)
    cases[admission.name] = [(a[2], []),
                             (edited(a[0], admission, 1, JCRQ=day_before(a[0]["RSRQ"], 1)), ["not_before:JCRQ"]),
                             (edited(a[1], admission, 2, QJQX="48"), ["field_range:QJQX"])]
    visit = catalog.table("ZJ_TSDJ")
    v = _clean_rows(first, visit, 3, spark, secret)
    cases[visit.name] = [(edited(v[0], visit, 0, DRWP="水果两袋\r\n换季衣物一包"), []),
                         (edited(v[1], visit, 1, KSSJ=v[1]["JSSJ"], JSSJ=v[1]["KSSJ"]),
                          ["not_before:JSSJ", "duration:SC"]),
                         (edited(v[2], visit, 2, SC=str(int(v[2]["SC"]) + 30)), ["duration:SC"])]
    for name, rows in cases.items():
        table = catalog.table(name)
        path = folder / f"{name}.csv"
        write_file(path, render(table, [r for r, _ in rows]), table.encoding, truncate=False)
        sha = file_sha256(path)
        ingest._stage(settings, "Lrules", table, path, sha, iter_rows(path, table))
        refs = {}
        for col, target in table.references.items():
            ptable = catalog.table(target.split(".")[0])
            refs[col] = parents.get(ingest.silver_name(ptable), ptable.item(target.split(".")[1]).silver_column)
        got = sorted((r["_source_row"], r["_ok"], sorted(r["_rules"]), r["_message"]) for r in
                     conform(ingest.read_staged(spark, settings, "Lrules", table, sha), table, catalog, secret, refs,
                             small=True).select("_source_row", "_ok", "_rules", "_message").collect())
        # Physical lines: the two-line remark of the first visit row moves the next rows down by one.
        lines = [2, 4, 5] if name == "ZJ_TSDJ" else [2, 3, 4]
        assert [g[0] for g in got] == lines, (name, got)
        for (line, ok, rules, message), (_, expected) in zip(got, rows, strict=True):
            assert rules == sorted(expected), (name, line, rules, message)
            assert ok == (not expected)
            if expected:
                assert f"20990101/{name}.csv line {line}: " in message and "row_rules.yaml" in message, message
                assert len(message) < 2000          # a huge field is quoted by its first characters only
    shutil.rmtree(settings.var_dir / "staging" / "Lrules", ignore_errors=True)
    shutil.rmtree(settings.var_dir / "rules-test", ignore_errors=True)
