"""Load legacy deliveries into bronze and silver, catalog-driven, losslessly and idempotently.

For each delivery folder ``<landing>/legacy/<YYYYMMDD>/`` and each file in it, parents first:

1. the file registry (``audit.loaded_files``) skips a file whose bytes were already loaded;
2. the raw rows go to ``bronze.<table>`` with file, line, load id and checksum;
3. ``conform`` types, decodes, checks and pseudonymises them; accepted rows are merged into
   ``silver.<silver_table>`` (every version kept), rejected rows go to ``quarantine.legacy_rows``
   with their rules; clear identifiers go only to ``silver.restricted_identity``;
4. ``audit.load_reconciliation`` records, per file, source rows = accepted + quarantined.

Re-running any step for the same file replaces its bronze and quarantine rows and merges the
same silver versions again, which changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from smartrehab.catalog import Catalog, LegacyTable, load_catalog
from smartrehab.settings import Settings
from spark_jobs.common.delta import replace_partition, row_hash, scd2_merge, table_exists, upsert
from spark_jobs.legacy.conform import conform
from spark_jobs.legacy.parse import FileRejected, file_sha256, read_rows

QUARANTINE = "quarantine.legacy_rows"
RECONCILIATION = "audit.load_reconciliation"
REGISTRY = "audit.loaded_files"
IDENTITY = "silver.restricted_identity"


@dataclass
class FileResult:
    file: str
    table: str
    status: str               # loaded | skipped_already_loaded | rejected
    source_rows: int = 0
    accepted_rows: int = 0
    quarantined_rows: int = 0
    inserted_versions: int = 0
    message: str = ""


@dataclass
class LoadReport:
    load_id: str
    files: list[FileResult] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(f.source_rows == f.accepted_rows + f.quarantined_rows for f in self.files if f.status == "loaded")


def delivery_days(s: Settings) -> list[date]:
    root = s.landing_dir / "legacy"
    if not root.exists():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.is_dir() and p.name.isdigit() and len(p.name) == 8:
            out.append(datetime.strptime(p.name, "%Y%m%d").date())
    return out


def table_order(catalog: Catalog) -> list[str]:
    """Tables with parents before children (references form a DAG)."""
    done: list[str] = []
    pending = dict(catalog.tables)
    while pending:
        progressed = False
        for name, t in list(pending.items()):
            parents = {ref.split(".")[0] for ref in t.references.values()} - {name}
            if parents <= set(done):
                done.append(name)
                del pending[name]
                progressed = True
        if not progressed:
            raise ValueError(f"catalog references form a cycle among {sorted(pending)}")
    return done


def silver_name(table: LegacyTable) -> str:
    return f"silver.{table.silver_table}"


def bronze_name(table: LegacyTable) -> str:
    return f"bronze.{table.name.lower()}"


def _stage(s: Settings, load_id: str, table: LegacyTable, path: Path, sha: str, rows) -> Path:
    cols = {c: [] for c in table.columns}
    meta = {"_source_row": [], "_row_sha256": [], "_parse_error": [], "_raw_line": []}
    for r in rows:
        for i, c in enumerate(table.columns):
            cols[c].append(r.values[i] if r.values is not None else None)
        meta["_source_row"].append(r.line)
        meta["_row_sha256"].append(r.sha256)
        meta["_parse_error"].append(r.error or None)
        meta["_raw_line"].append(r.raw_text or None)
    arrays = {c: pa.array(v, pa.string()) for c, v in cols.items()}
    arrays["_source_row"] = pa.array(meta["_source_row"], pa.int64())
    for c in ("_row_sha256", "_parse_error", "_raw_line"):
        arrays[c] = pa.array(meta[c], pa.string())
    n = len(rows)
    arrays["_load_id"] = pa.array([load_id] * n, pa.string())
    arrays["_source_file"] = pa.array([f"{path.parent.name}/{path.name}"] * n, pa.string())
    arrays["_file_sha256"] = pa.array([sha] * n, pa.string())
    out = s.var_dir / "staging" / load_id / f"{table.name}-{sha[:12]}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), out)
    return out


def _already_loaded(spark: SparkSession, sha: str) -> bool:
    if not table_exists(spark, REGISTRY):
        return False
    return spark.table(REGISTRY).filter((F.col("file_sha256") == sha) & (F.col("status") == "loaded")).limit(1).count() > 0


def _record(spark: SparkSession, load_id: str, day: date, path: Path, sha: str, res: FileResult) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rec = spark.createDataFrame([(
        sha, f"{path.parent.name}/{path.name}", res.table, day, load_id, res.status, res.source_rows,
        res.accepted_rows, res.quarantined_rows, res.inserted_versions,
        res.source_rows == res.accepted_rows + res.quarantined_rows, res.message, now)],
        "file_sha256 string, source_file string, legacy_table string, delivery_day date, load_id string, "
        "status string, source_rows long, accepted_rows long, quarantined_rows long, inserted_versions long, "
        "balanced boolean, message string, recorded_at timestamp")
    if res.status == "skipped_already_loaded":
        # A second delivery of the same bytes: logged, never loaded twice.
        upsert(spark, rec.withColumn("event_id", F.lit(str(uuid.uuid4()))), "audit.file_events", ["event_id"])
        return
    upsert(spark, rec, RECONCILIATION, ["file_sha256"])
    upsert(spark, rec.select("file_sha256", "source_file", "legacy_table", "delivery_day", "load_id", "status",
                             "recorded_at"), REGISTRY, ["file_sha256"])


def load_file(spark: SparkSession, s: Settings, catalog: Catalog, table: LegacyTable, path: Path, day: date,
              load_id: str, key: str) -> FileResult:
    sha = file_sha256(path)
    name = f"{path.parent.name}/{path.name}"
    if _already_loaded(spark, sha):
        res = FileResult(name, table.name, "skipped_already_loaded",
                         message="identical bytes were loaded before; this delivery is ignored")
        _record(spark, load_id, day, path, sha, res)
        return res
    try:
        rows = read_rows(path, table)
    except FileRejected as exc:
        res = FileResult(name, table.name, "rejected", message=str(exc))
        _record(spark, load_id, day, path, sha, res)
        return res
    staged = spark.read.parquet(str(_stage(s, load_id, table, path, sha, rows)))
    bronze = staged.withColumn("_loaded_at", F.current_timestamp()).withColumn("_delivery_day", F.lit(day))
    replace_partition(spark, bronze, bronze_name(table), "_file_sha256", sha)
    bronze = spark.table(bronze_name(table)).filter(F.col("_file_sha256") == sha)
    parents = {}
    for col, target in table.references.items():
        ptable = catalog.table(target.split(".")[0])
        pitem = ptable.item(target.split(".")[1])
        if table_exists(spark, silver_name(ptable)):
            parents[col] = spark.table(silver_name(ptable)).select(F.col(pitem.silver_column).alias("k"))
        else:
            parents[col] = spark.createDataFrame([], "k string")
    out = conform(bronze, table, catalog, key, parents)
    n_quarantined = out.quarantined.count()
    replace_partition(spark, out.quarantined, QUARANTINE, "file_sha256", sha)
    if out.identities is not None:
        upsert(spark, out.identities, IDENTITY, ["pseudonym", "domain"])
    keys = [table.item(k).silver_column for k in table.key]
    version = table.item(table.version_column).silver_column
    business = [c for c in out.accepted.columns if not c.startswith("_")]
    accepted = row_hash(out.accepted, business)
    n_accepted = accepted.count()
    merged = scd2_merge(spark, accepted, silver_name(table), keys, version)
    res = FileResult(name, table.name, "loaded", len(rows), n_accepted, n_quarantined, merged["inserted"])
    _record(spark, load_id, day, path, sha, res)
    return res


def run(spark: SparkSession, s: Settings, days: list[date] | None = None, tables: list[str] | None = None,
        log=print) -> LoadReport:
    """Load the delivery folders of ``days`` (all present when None), oldest first."""
    catalog = load_catalog(s.catalog_dir)
    key = s.secret("pseudonym_key")
    load_id = f"L{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = LoadReport(load_id)
    wanted = days if days is not None else delivery_days(s)
    order = [t for t in table_order(catalog) if tables is None or t in tables]
    for day in sorted(wanted):
        folder = s.landing_dir / "legacy" / f"{day:%Y%m%d}"
        if not folder.is_dir():
            raise FileNotFoundError(f"no delivery folder {folder}")
        known = set()
        for name in order:
            table = catalog.table(name)
            for ext in ("csv", "txt"):
                path = folder / f"{name}.{ext}"
                if path.exists():
                    known.add(path.name)
                    res = load_file(spark, s, catalog, table, path, day, load_id, key)
                    report.files.append(res)
                    log(f"{day:%Y-%m-%d} {name}: {res.status} source={res.source_rows} "
                        f"accepted={res.accepted_rows} quarantined={res.quarantined_rows}"
                        + (f" ({res.message})" if res.message else ""))
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith((".", "_")) and p.name not in known:
                log(f"{day:%Y-%m-%d} {p.name}: not in the catalog, left untouched (add it to catalog/tables.yaml)")
                report.files.append(FileResult(f"{folder.name}/{p.name}", "", "unknown_file",
                                               message="file name matches no catalog table"))
    return report
