"""Quality gates: Great Expectations suites run on the lake's tables, layer by layer.

Suites come from two places: rules derived from the catalog (keys, code tables, references,
freshness) and the hand-written YAML files in ``expectations/``. A failed expectation of severity
``fail`` raises ``QualityGateFailed`` (the DAG stops there); ``warn`` is only recorded. Every
result goes to ``audit.quality_results``; GE renders data docs under ``var/gx``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from smartrehab.catalog import Catalog, load_catalog
from smartrehab.settings import Settings

SEVERITY = {"fail": "critical", "warn": "warning"}
RESULTS_TABLE = "audit.quality_results"


class QualityGateFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Rule:
    table: str            # database.table
    type: str             # GE expectation class name
    kwargs: dict[str, Any]
    severity: str         # fail | warn
    notes: str = ""


@dataclass
class GateResult:
    layer: str
    run_id: str
    rows: list[dict] = field(default_factory=list)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.rows if not r["success"] and r["severity"] == "fail"]

    @property
    def warnings(self) -> list[dict]:
        return [r for r in self.rows if not r["success"] and r["severity"] == "warn"]


def catalog_rules(catalog: Catalog, layer: str, existing: set[str]) -> list[Rule]:
    """Rules every catalog table gets without anyone writing them."""
    rules: list[Rule] = []
    if layer == "bronze" and "bronze.legacy_rows" in existing:
        # One bronze table holds the raw rows of every legacy table (spark_jobs/legacy/ingest.py).
        name = "bronze.legacy_rows"
        for col in ("_legacy_table", "_source_file", "_source_row", "_file_sha256", "_load_id"):
            rules.append(Rule(name, "ExpectColumnValuesToNotBeNull", {"column": col}, "fail"))
        rules.append(Rule(name, "ExpectColumnValuesToBeInSet",
                          {"column": "_legacy_table", "value_set": sorted(catalog.tables)}, "fail"))
        rules.append(Rule(name, "UnexpectedRowsExpectation", {"unexpected_rows_query":
                          "select _legacy_table, _source_row from {batch} "
                          "where (_parse_error is null) = (_raw is null)"}, "fail",
                          "A row carries its raw values, or the rule that kept it from being read; never both."))
        rules.append(Rule(name, "UnexpectedRowsExpectation", {"unexpected_rows_query":
                          "select _legacy_table, avg(case when _parse_error is null then 0 else 1 end) as unread "
                          "from {batch} group by _legacy_table "
                          "having avg(case when _parse_error is null then 0 else 1 end) > 0.05"}, "warn",
                          "More than 5 % of a table's lines could not be read."))
    for t in catalog.tables.values():
        if layer == "silver":
            name = f"silver.{t.silver_table}"
            if name not in existing:
                continue
            keys = [t.item(k).silver_column for k in t.key]
            for k in keys:
                rules.append(Rule(name, "ExpectColumnValuesToNotBeNull", {"column": k}, "fail"))
            rules.append(Rule(name, "UnexpectedRowsExpectation", {"unexpected_rows_query":
                              f"select {', '.join(keys)} from {{batch}} where is_current "
                              f"group by {', '.join(keys)} having count(*) > 1"}, "fail",
                              "Exactly one current version per record."))
            for it in t.items:
                if it.data_type == "code":
                    codes = sorted(catalog.code_tables[it.code_table].labels)
                    rules.append(Rule(name, "ExpectColumnValuesToBeInSet",
                                      {"column": it.silver_column, "value_set": codes}, "fail"))
            for col, target in t.references.items():
                ptable = catalog.table(target.split(".")[0])
                pcol = ptable.item(target.split(".")[1]).silver_column
                ccol = t.item(col).silver_column
                rules.append(Rule(name, "UnexpectedRowsExpectation", {"unexpected_rows_query":
                                  f"select b.{ccol} from {{batch}} b left anti join silver.{ptable.silver_table} p "
                                  f"on b.{ccol} = p.{pcol} where b.{ccol} is not null"}, "fail",
                                  f"{col} must resolve to {target}."))
            version = t.item(t.version_column).silver_column
            rules.append(Rule(name, "UnexpectedRowsExpectation", {"unexpected_rows_query":
                              f"select max({version}) as newest from {{batch}} having max({version}) < "
                              "(select date_sub(max(delivery_day), 30) from audit.load_reconciliation "
                              "where status = 'loaded')"}, "warn",
                              "Freshness: the newest record is over 30 days older than the latest delivery."))
    return rules


def yaml_rules(s: Settings, layer: str, existing: set[str]) -> list[Rule]:
    path = s.repo_root / "expectations" / f"{layer}.yaml"
    if not path.exists():
        return []
    rules = []
    for table, entries in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
        name = f"{layer}.{table}"
        if name not in existing:
            continue
        for e in entries:
            e = dict(e)
            sev = e.pop("severity", "fail")
            if sev not in SEVERITY:
                raise ValueError(f"{path}: {table}: severity must be fail or warn, not {sev}")
            rules.append(Rule(name, e.pop("type"), e, sev, e.pop("notes", "")))
    return rules


def _existing_tables(spark, layer: str) -> set[str]:
    return {f"{layer}.{t.name}" for t in spark.catalog.listTables(layer)}


def run_gate(spark, s: Settings, layer: str, raise_on_failure: bool = True, log=print) -> GateResult:
    """Validate every table of ``layer`` present in the lake; record and (optionally) enforce."""
    import great_expectations as gx
    from pyspark.sql import functions as F

    existing = _existing_tables(spark, layer)
    rules = catalog_rules(load_catalog(s.catalog_dir), layer, existing) + yaml_rules(s, layer, existing)
    run_id = f"Q{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = GateResult(layer, run_id)
    if not rules:
        return result
    gx_dir = s.var_dir / "gx"
    gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    source = context.data_sources.add_or_update_spark(name="lake")
    by_table: dict[str, list[Rule]] = {}
    for r in rules:
        by_table.setdefault(r.table, []).append(r)
    for table, trules in sorted(by_table.items()):
        # Every version is validated (a bad old version is still bad data); cached because each
        # expectation is a pass over the table.
        df = spark.table(table).cache()
        asset_name = table.replace(".", "__")
        try:
            asset = source.get_asset(asset_name)
        except LookupError:
            asset = source.add_dataframe_asset(name=asset_name)
        try:
            batch_def = asset.get_batch_definition("whole")
        except (KeyError, LookupError, ValueError):
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
        suite = gx.ExpectationSuite(name=f"{table}.gate")
        for r in trules:
            cls = getattr(gx.expectations, r.type)
            suite.add_expectation(cls(**r.kwargs, severity=SEVERITY[r.severity],
                                      meta={"severity": r.severity, "notes": r.notes}))
        suite = context.suites.add_or_update(suite)
        vd = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{table}.gate", data=batch_def, suite=suite))
        cp = context.checkpoints.add_or_update(gx.Checkpoint(name=f"{table}.gate", validation_definitions=[vd]))
        res = cp.run(batch_parameters={"dataframe": df})
        df.unpersist()
        for vres in res.run_results.values():
            for er in vres.results:
                cfg = er.expectation_config
                sev = (cfg.meta or {}).get("severity", "fail")
                kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
                observed = {k: er.result.get(k) for k in ("observed_value", "unexpected_count", "unexpected_percent",
                                                           "unexpected_rows") if k in er.result}
                if er.exception_info and er.exception_info.get("raised_exception"):
                    observed["exception"] = str(er.exception_info.get("exception_message"))[:500]
                result.rows.append({
                    "run_id": run_id, "layer": layer, "table_name": table, "expectation": cfg.type,
                    "kwargs": json.dumps(kwargs, ensure_ascii=False, default=str)[:2000], "severity": sev,
                    "success": bool(er.success), "observed": json.dumps(observed, default=str)[:2000],
                })
    context.build_data_docs()
    rows = result.rows
    if rows:
        df = spark.createDataFrame(rows, "run_id string, layer string, table_name string, expectation string, "
                                         "kwargs string, severity string, success boolean, observed string")
        df.withColumn("checked_at", F.current_timestamp()).write.format("delta").mode("append") \
            .saveAsTable(RESULTS_TABLE)
    log(f"quality gate {layer}: {len(rows)} expectations, {len(result.failures)} failed (fail), "
        f"{len(result.warnings)} failed (warn); data docs in {gx_dir / 'uncommitted' / 'data_docs'}")
    if result.failures and raise_on_failure:
        lines = [f"- {f['table_name']}: {f['expectation']} {f['kwargs']} -> {f['observed']}" for f in result.failures]
        raise QualityGateFailed(f"quality gate '{layer}' failed ({len(lines)} expectations):\n" + "\n".join(lines))
    return result
