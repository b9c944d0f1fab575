"""Load legacy deliveries into bronze and silver, catalog-driven, losslessly and idempotently.

For each delivery folder ``<landing>/legacy/<YYYYMMDD>/`` and each file in it, parents first:

1. the file registry (``audit.loaded_files``) skips a file whose bytes were already loaded;
2. the file's raw rows are staged (Parquet, with file, line, load id and checksum);
3. ``conform`` types, decodes, checks and pseudonymises them; accepted rows are merged into
   ``silver.<silver_table>`` (every version kept).

Then, once per run, for every file loaded:

4. the staged raw rows go to the one bronze table ``bronze.legacy_rows`` (raw values as a map of
   legacy column to value, partitioned by legacy table): one commit a run, not one per table;
5. rejected rows go to ``quarantine.legacy_rows`` with their rules; clear identifiers go only to
   ``silver.restricted_identity``;
6. ``audit.load_reconciliation`` records, per file, source rows = accepted + quarantined, and the
   file registry records the file.

Re-running any step for the same file appends no bronze row twice (files already in bronze are left
out of the append), replaces its quarantine rows and merges the same silver versions again, which
changes nothing.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from itertools import chain, islice
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from smartrehab.catalog import Catalog, LegacyTable, load_catalog
from smartrehab.checksum import file_sha256
from smartrehab.settings import Settings
from smartrehab.spark import interpreted_projections
from spark_jobs.common.delta import merge_changed, replace_where_in, row_hash, scd2_merge, table_exists
from spark_jobs.legacy.conform import IDENTITIES_TYPE, conform
from spark_jobs.legacy.parse import FileRejected, RawRow, iter_rows

BRONZE = "bronze.legacy_rows"
QUARANTINE = "quarantine.legacy_rows"
SQL_DIR = Path(__file__).resolve().parent / "sql"
RECONCILIATION = "audit.load_reconciliation"
REGISTRY = "audit.loaded_files"
IDENTITY = "silver.restricted_identity"
FILE_EVENTS = "audit.file_events"


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
    seconds: float = 0.0
    # Where a loaded file's time went: PHASES, in seconds (the loader's log line and bench_legacy show them).
    phases: dict[str, float] = field(default_factory=dict)


# read: parse and stage the file's rows; conform: type, check, pseudonymise and split into the accepted /
# rejected halves; silver: the SCD2 merge.
PHASES = ("read", "conform", "silver")
# The run-level commits, once per run for all its files (_finish).
RUN_PHASES = ("bronze", "quarantine", "identity", "audit")


@dataclass
class LoadReport:
    load_id: str
    files: list[FileResult] = field(default_factory=list)
    # Seconds of each RUN_PHASES commit of the run.
    run_phases: dict[str, float] = field(default_factory=dict)
    # Per delivery day (ISO date): "interpreted" or "generated" row projections (see projections_for).
    projections: dict[str, str] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(f.source_rows == f.accepted_rows + f.quarantined_rows for f in self.files if f.status == "loaded")

    def phase_seconds(self) -> dict[str, float]:
        """Seconds per phase summed over the files (with several load threads, more than the wall time)."""
        return {p: round(sum(f.phases.get(p, 0.0) for f in self.files), 1) for p in PHASES}


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
        for name in list(pending):
            if _parents(catalog, name) <= set(done):
                done.append(name)
                del pending[name]
                progressed = True
        if not progressed:
            raise ValueError(f"catalog references form a cycle among {sorted(pending)}")
    return done


def silver_name(table: LegacyTable) -> str:
    return f"silver.{table.silver_table}"


STAGE_CHUNK_ROWS = 200_000
# What a staged file carries besides the table's raw columns (all strings).
STAGE_META = [("_source_row", pa.int64()), ("_row_sha256", pa.string()), ("_parse_error", pa.string()),
              ("_raw_line", pa.string()), ("_load_id", pa.string()), ("_source_file", pa.string()),
              ("_file_sha256", pa.string())]


def stage_schema(table: LegacyTable) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in table.columns] + STAGE_META)


def _spark_schema(schema: pa.Schema) -> str:
    names = {pa.string(): "string", pa.int64(): "bigint"}
    return ", ".join(f"`{f.name}` {names[f.type]}" for f in schema)


def staged_path(s: Settings, load_id: str, table: LegacyTable, sha: str) -> Path:
    return s.var_dir / "staging" / load_id / f"{table.name}-{sha[:12]}.parquet"


def read_staged(spark: SparkSession, s: Settings, load_id: str, table: LegacyTable, sha: str) -> DataFrame:
    """A staged file, read with its known schema (no schema-inference job)."""
    return spark.read.schema(_spark_schema(stage_schema(table))).parquet(str(staged_path(s, load_id, table, sha)))


def _stage(s: Settings, load_id: str, table: LegacyTable, path: Path, sha: str, rows: Iterator[RawRow]) -> int:
    """Write a file's raw rows to one Parquet staging file, STAGE_CHUNK_ROWS rows at a time, so that a
    file of millions of rows never sits in memory as Python objects (at ``staged_path``). Returns the row count."""
    schema = stage_schema(table)
    source = f"{path.parent.name}/{path.name}"
    empty = (None,) * len(table.columns)
    out = staged_path(s, load_id, table, sha)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with pq.ParquetWriter(out, schema) as writer:
        while chunk := list(islice(rows, STAGE_CHUNK_ROWS)):
            k = len(chunk)
            # Column-wise by transposing (zip runs in C).
            values = list(zip(*[r.values if r.values is not None else empty for r in chunk], strict=True))
            arrays = [pa.array(v, pa.string()) for v in values]
            arrays += [pa.array([r.line for r in chunk], pa.int64()),
                       pa.array([r.sha256 for r in chunk], pa.string()),
                       pa.array([r.error or None for r in chunk], pa.string()),
                       pa.array([r.raw_text or None for r in chunk], pa.string()),
                       pa.array([load_id] * k, pa.string()), pa.array([source] * k, pa.string()),
                       pa.array([sha] * k, pa.string())]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += k
    return n


def loaded_shas(spark: SparkSession) -> set[str]:
    if not table_exists(spark, REGISTRY):
        return set()
    return {r[0] for r in spark.table(REGISTRY).filter(F.col("status") == "loaded").select("file_sha256").collect()}


AUDIT_SCHEMA = ("file_sha256 string, source_file string, legacy_table string, delivery_day date, load_id string, "
                "status string, source_rows long, accepted_rows long, quarantined_rows long, inserted_versions long, "
                "balanced boolean, message string")


def _write_audit(spark: SparkSession, load_id: str, results: list[tuple[date, str, FileResult]]) -> None:
    """One commit per audit table for the whole run: reconciliation, registry, delivery events."""
    if not results:
        return
    rows = [(sha, r.file, r.table, day, load_id, r.status, r.source_rows, r.accepted_rows, r.quarantined_rows,
             r.inserted_versions, r.source_rows == r.accepted_rows + r.quarantined_rows, r.message)
            for day, sha, r in results]
    df = spark.createDataFrame(rows, AUDIT_SCHEMA).withColumn("recorded_at", F.current_timestamp())
    skipped = df.filter(F.col("status") == "skipped_already_loaded")
    done = df.filter(F.col("status") != "skipped_already_loaded")
    # A second delivery of the same bytes is logged as an event, never loaded twice.
    merge_changed(spark, skipped.withColumn("event_id", F.concat_ws(":", "load_id", "file_sha256")), FILE_EVENTS,
                  ["event_id"])
    merge_changed(spark, done, RECONCILIATION, ["file_sha256"])
    merge_changed(spark, done.select("file_sha256", "source_file", "legacy_table", "delivery_day", "load_id",
                                     "status", "recorded_at"), REGISTRY, ["file_sha256"])


class ParentKeys:
    """The distinct key values of the parent tables in silver, for the orphan check of their children.

    Read once per parent and run into the driver and handed to each child's conform as a local relation,
    so that a child's check scans no Delta table (on an incremental day, about 60 of the 69 files check
    against the person or admission keys). The loader calls ``changed`` when it has merged a file of a
    parent; parents finish before their children start (``_load_day``), so a child always sees the keys
    of every parent file delivered before it. Thread-safe: the load threads share one."""

    def __init__(self, spark: SparkSession):
        self._spark = spark
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], DataFrame] = {}

    def get(self, table: str, column: str) -> DataFrame:
        with self._lock:
            if (table, column) not in self._keys:
                if table_exists(self._spark, table):
                    values = self._spark.table(table).select(F.col(column).cast("string").alias("k")).distinct().toArrow()
                    self._keys[(table, column)] = self._spark.createDataFrame(values, "k string")
                else:
                    self._keys[(table, column)] = self._spark.createDataFrame([], "k string")
            return self._keys[(table, column)]

    def changed(self, table: str) -> None:
        with self._lock:
            for k in [k for k in self._keys if k[0] == table]:
                del self._keys[k]


def load_file(spark: SparkSession, s: Settings, catalog: Catalog, table: LegacyTable, path: Path,
              load_id: str, key: str, already: set[str], parent_keys: ParentKeys | None = None) -> tuple[str, FileResult]:
    t0 = time.monotonic()
    sha, res = _load_file(spark, s, catalog, table, path, load_id, key, already, parent_keys or ParentKeys(spark))
    res.seconds = time.monotonic() - t0
    return sha, res


def _stopwatch(into: dict[str, float]):
    """``lap(phase)`` records under ``phase`` the seconds since the previous lap (or since the start)."""
    clock = [time.monotonic()]

    def lap(phase: str) -> None:
        now = time.monotonic()
        into[phase] = round(now - clock[0], 3)
        clock[0] = now

    return lap


def _load_file(spark: SparkSession, s: Settings, catalog: Catalog, table: LegacyTable, path: Path,
               load_id: str, key: str, already: set[str], parent_keys: ParentKeys) -> tuple[str, FileResult]:
    phases: dict[str, float] = {}
    lap = _stopwatch(phases)
    sha = file_sha256(path)
    name = f"{path.parent.name}/{path.name}"
    if sha in already:
        return sha, FileResult(name, table.name, "skipped_already_loaded",
                               message="identical bytes were loaded before; this delivery is ignored")
    try:
        rows = iter_rows(path, table, catalog.row_rules.max_record_lines)
    except FileRejected as exc:
        return sha, FileResult(name, table.name, "rejected", message=str(exc))
    n_rows = _stage(s, load_id, table, path, sha, rows)
    lap("read")
    staged = read_staged(spark, s, load_id, table, sha)
    parents = {}
    for col, target in table.references.items():
        ptable = catalog.table(target.split(".")[0])
        parents[col] = parent_keys.get(silver_name(ptable), ptable.item(target.split(".")[1]).silver_column)
    small = n_rows <= SMALL_FILE_ROWS
    conformed = conform(staged, table, catalog, key, parents, small=small)
    business = [c for c in conformed.columns if not c.startswith("_")]
    conformed = row_hash(conformed, business)
    # The file's rows are conformed once, split on _ok. Silver takes the accepted half; quarantine and clear
    # identities are gathered from every file's halves once per run (_finish).
    out_dir = s.var_dir / "staging" / load_id / "conformed" / sha
    if small:
        n_accepted, n_quarantined, accepted = _split_in_driver(conformed, out_dir)
    else:
        conformed.write.mode("overwrite").partitionBy("_ok").parquet(str(out_dir))
        # Counted from the Parquet footers just written: no second Spark job.
        n_accepted, n_quarantined = _parquet_rows(out_dir / "_ok=true"), _parquet_rows(out_dir / "_ok=false")
        halves = StructType([f for f in conformed.schema.fields if f.name != "_ok"])
        accepted = spark.read.schema(halves).parquet(str(out_dir / "_ok=true")) if n_accepted else None
    lap("conform")
    merged = {"inserted": 0}
    if accepted is not None:
        keys = [table.item(k).silver_column for k in table.key]
        version = table.item(table.version_column).silver_column
        batch = accepted.select([*business, "_load_id", "_source_file", "_source_row", "_row_hash"])
        merged = scd2_merge(spark, batch, silver_name(table), keys, version)
        parent_keys.changed(silver_name(table))
    lap("silver")
    return sha, FileResult(name, table.name, "loaded", n_rows, n_accepted, n_quarantined, merged["inserted"],
                           phases=phases)


# A file of at most this many rows (every file of an incremental day, at SF1 too) is conformed into the
# driver's memory and split there: no Parquet write and re-read, and its silver batch is a local relation.
SMALL_FILE_ROWS = 5000


def _split_in_driver(conformed: DataFrame, out_dir: Path):
    """Conform a small file in one Spark job whose result comes to the driver; write its two halves as
    _finish expects them (``_ok=true`` / ``_ok=false``). Returns accepted count, rejected count and the
    accepted rows as an Arrow table (None when there are none)."""
    rows = conformed.toArrow()
    ok = rows.column("_ok")
    halves = {"true": rows.filter(ok).drop_columns(["_ok"]), "false": rows.filter(pc.invert(ok)).drop_columns(["_ok"])}
    for half, part in halves.items():
        if part.num_rows:
            (out_dir / f"_ok={half}").mkdir(parents=True, exist_ok=True)
            pq.write_table(part, out_dir / f"_ok={half}" / "part-0.parquet")
    good = halves["true"]
    return good.num_rows, halves["false"].num_rows, (good if good.num_rows else None)


def _parquet_rows(folder: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet"))


# What _finish reads from every file's conformed output, whatever the table (Parquet fills a column a
# file lacks with nulls).
SIDE_SCHEMA = ("_load_id string, _legacy_table string, _source_file string, _file_sha256 string, _source_row long, "
               f"_rules array<string>, _message string, _raw_values string, _raw_line string, _identities {IDENTITIES_TYPE}")


def _parents(catalog: Catalog, name: str) -> set[str]:
    return {r.split(".")[0] for r in catalog.table(name).references.values()} - {name}


def _load_day(spark: SparkSession, s: Settings, catalog: Catalog, jobs: list[tuple[LegacyTable, Path]],
              load_id: str, key: str, already: set[str], parent_keys: ParentKeys, workers: int, done_cb) -> None:
    """Load one day's files on ``workers`` threads, each table as soon as its parents of the same day are in
    silver (the orphan check reads them), the biggest files first: a long file starts early instead of
    holding back a whole level of the reference graph. One file of a table at a time."""
    waiting = sorted(jobs, key=lambda j: -j[1].stat().st_size)
    pending_tables = {t.name for t, _ in jobs}
    running: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while waiting or running:
            busy = set(running.values())
            for job in list(waiting):
                table, path = job
                if len(running) >= workers or table.name in busy or _parents(catalog, table.name) & pending_tables:
                    continue
                waiting.remove(job)
                busy.add(table.name)
                running[pool.submit(load_file, spark, s, catalog, table, path, load_id, key, already,
                                     parent_keys)] = table.name
            if not running:
                raise ValueError(f"files {[p.name for _, p in waiting]} wait for parents that never load")
            complete, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in complete:
                name = running.pop(fut)
                done_cb(*fut.result())
                if not any(t.name == name for t, _ in waiting):
                    pending_tables.discard(name)


def projections_for(s: Settings, paths: list[Path]) -> str:
    """A day of small files (``legacy_interpreted_max_mib`` in total) is loaded with interpreted row
    projections: its time is Delta commits, not rows (bench/README.md, "Where a legacy day's time goes")."""
    limit = s.legacy_interpreted_max_mib * 2**20
    small = limit > 0 and sum(p.stat().st_size for p in paths) <= limit
    return "interpreted" if small else "generated"


def run(spark: SparkSession, s: Settings, days: list[date] | None = None, tables: list[str] | None = None,
        log=print, workers: int | None = None) -> LoadReport:
    """Load the delivery folders of ``days`` (all present when None), oldest first.

    Tables whose parents are loaded run side by side (``workers`` threads sharing one Spark
    session, ``legacy_load_threads`` by default): most of a small table's time is commit and
    planning overhead, not CPU. See ``_load_day`` for the order.
    """
    catalog = load_catalog(s.catalog_dir)
    key = s.secret("pseudonym_key")
    load_id = f"L{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = LoadReport(load_id)
    wanted = days if days is not None else delivery_days(s)
    tables = tables if tables is not None else s.legacy_table_list
    names = [t for t in table_order(catalog) if tables is None or t in tables]
    already = loaded_shas(spark)
    parent_keys = ParentKeys(spark)
    results: list[tuple[date, str, FileResult]] = []
    for day in sorted(wanted):
        folder = s.landing_dir / "legacy" / f"{day:%Y%m%d}"
        if not folder.is_dir():
            raise FileNotFoundError(f"no delivery folder {folder}")
        jobs = [(catalog.table(name), folder / f"{name}.{ext}") for name in names for ext in ("csv", "txt")
                if (folder / f"{name}.{ext}").exists()]
        known = {p.name for _, p in jobs}

        def done(sha: str, res: FileResult, day: date = day) -> None:
            results.append((day, sha, res))
            report.files.append(res)
            if res.status == "loaded":
                already.add(sha)
            took = ", ".join(f"{p} {res.phases[p]:.1f}" for p in PHASES if p in res.phases)
            log(f"{day:%Y-%m-%d} {res.table}: {res.status} source={res.source_rows} "
                f"accepted={res.accepted_rows} quarantined={res.quarantined_rows} in {res.seconds:.1f} s"
                + (f" ({took})" if took else "") + (f" ({res.message})" if res.message else ""))

        mode = report.projections[day.isoformat()] = projections_for(s, [p for _, p in jobs])
        log(f"{day:%Y-%m-%d}: {len(jobs)} files, {mode} row projections")
        with interpreted_projections(spark) if mode == "interpreted" else nullcontext():
            _load_day(spark, s, catalog, jobs, load_id, key, already, parent_keys, workers or s.legacy_load_threads,
                      done)
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith((".", "_")) and p.name not in known:
                log(f"{day:%Y-%m-%d} {p.name}: not in the catalog, left untouched (add it to catalog/tables.yaml)")
                report.files.append(FileResult(f"{folder.name}/{p.name}", "", "unknown_file",
                                               message="file name matches no catalog table"))
    # The run-level commits of a run made only of small days are small too.
    small = set(report.projections.values()) == {"interpreted"}
    with interpreted_projections(spark) if small else nullcontext():
        report.run_phases = _finish(spark, s, catalog, load_id, results)
    return report


def append_bronze(spark: SparkSession, s: Settings, catalog: Catalog, load_id: str,
                  files: list[tuple[date, str, str]]) -> int:
    """Append the staged raw rows of ``files`` (delivery day, file checksum, legacy table) to the bronze
    table in one commit; a file whose rows are in bronze already (a run that died after this step and is
    run again) is left out, so no row is appended twice. Returns the number of files appended."""
    if table_exists(spark, BRONZE) and files:
        shas = sorted({sha for _, sha, _ in files})
        present = {r[0] for r in spark.table(BRONZE).where(F.col("_file_sha256").isin(shas))
                   .select("_file_sha256").distinct().collect()}
        files = [f for f in files if f[1] not in present]
    frames = []
    for day, sha, name in files:
        table = catalog.table(name)
        raw = F.create_map(*chain.from_iterable((F.lit(c), F.col(c)) for c in table.columns))
        frames.append(read_staged(spark, s, load_id, table, sha).select(
            F.lit(table.name).alias("_legacy_table"), *(F.col(c) for c, _ in STAGE_META),
            # An unreadable line has no values, only its text (_raw_line) and the rule (_parse_error).
            F.when(F.col("_parse_error").isNull(), raw).alias("_raw"), F.lit(day).alias("_delivery_day")))
    if frames:
        (reduce(DataFrame.unionByName, frames).withColumn("_loaded_at", F.current_timestamp())
         .write.format("delta").mode("append").partitionBy("_legacy_table").saveAsTable(BRONZE))
    return len(frames)


def _finish(spark: SparkSession, s: Settings, catalog: Catalog, load_id: str, results) -> dict[str, float]:
    """The run-level commits (RUN_PHASES), each once for all the run's files; returns their seconds."""
    stage_dir = s.var_dir / "staging" / load_id
    loaded = [(day, sha, r.table) for day, sha, r in results if r.status == "loaded"]
    shas = [sha for _, sha, _ in loaded]
    took: dict[str, float] = {}
    lap = _stopwatch(took)
    append_bronze(spark, s, catalog, load_id, loaded)
    lap("bronze")

    def side(half: str):
        paths = [str(p) for p in sorted((stage_dir / "conformed").glob(f"*/{half}"))]
        return spark.read.schema(SIDE_SCHEMA).parquet(*paths) if paths else None

    rejected = side("_ok=false")
    if shas and rejected is not None:
        replace_where_in(spark, rejected.select(
            F.col("_load_id").alias("load_id"), F.col("_legacy_table").alias("legacy_table"),
            F.col("_source_file").alias("source_file"), F.col("_file_sha256").alias("file_sha256"),
            F.col("_source_row").alias("source_row"), F.col("_rules").alias("rules"),
            F.col("_message").alias("message"), F.col("_raw_values").alias("raw_values"),
            F.col("_raw_line").alias("raw_line"), F.current_timestamp().alias("quarantined_at")),
            QUARANTINE, "file_sha256", shas)
    if spark.catalog.tableExists(QUARANTINE):
        spark.sql((SQL_DIR / "quarantine_by_rule.sql").read_text(encoding="utf-8"))
    lap("quarantine")
    accepted = side("_ok=true")
    if accepted is not None:
        ids = (accepted.select("_load_id", F.explode("_identities").alias("i"))
               .select("i.pseudonym", "i.domain", "i.item_code", "i.clear_value",
                       F.col("_load_id").alias("first_load_id"))
               .dropDuplicates(["pseudonym", "domain"]))
        # A clear value seen again keeps the load that first brought it.
        merge_changed(spark, ids, IDENTITY, ["pseudonym", "domain"], ignore=("first_load_id",))
    lap("identity")
    _write_audit(spark, load_id, results)
    lap("audit")
    shutil.rmtree(stage_dir, ignore_errors=True)
    return took
