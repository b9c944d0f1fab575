"""The one place where the platform writes Delta tables with MERGE.

``scd2_merge`` keeps every version of a record (valid_from / valid_to / is_current) and is
idempotent: merging the same batch twice changes nothing, and a version that arrives late
(older than the current one) is slotted into the history in its place. ``merge_changed`` is the
plain keyed insert-or-update (audit tables, identities, feed aggregates) that rewrites a row only
when a value changed; ``insert_missing`` inserts rows whose key is new and never touches others.
``replace_where_in`` overwrites the rows of one load (quarantine) so that re-running a load
replaces instead of duplicating; ``append_once`` appends a batch exactly once (bronze), keyed by
a transaction id.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

SCD2_COLUMNS = ("valid_from", "valid_to", "is_current", "_row_hash")


def table_exists(spark: SparkSession, name: str) -> bool:
    return spark.catalog.tableExists(name)


def row_hash(df: DataFrame, columns: list[str]) -> DataFrame:
    """Adds ``_row_hash``: SHA-256 of the business columns, to tell real changes from re-sends."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("\u2400")) for c in columns]
    return df.withColumn("_row_hash", F.sha2(F.concat_ws("\u241f", *parts), 256))


def scd2_merge(spark: SparkSession, batch: DataFrame, table: str, keys: list[str], version_col: str) -> dict:
    """Merge versions in ``batch`` (must carry ``_row_hash`` and ``version_col``) into ``table``.

    Returns counts: versions inserted, existing versions re-chained (updated).

    A batch of at most SMALL_BATCH_ROWS rows (a legacy file of an incremental day) is brought to the
    driver once and merged from that copy: the stored versions of its keys are read once, by key value
    (Delta skips every data file whose statistics cannot hold them), and neither that read nor the
    batch is computed again inside the MERGE. When none of its keys is stored yet, it is appended.
    A larger batch (a full load) is merged from its plan against the whole table.
    """
    from delta.tables import DeltaTable

    version_key = [*keys, version_col, "_row_hash"]
    w = Window.partitionBy(*keys).orderBy(F.col("valid_from").asc(), F.col("_row_hash").asc())
    if not table_exists(spark, table):
        # First load: the chain is computed on the batch alone and written in one commit.
        _chain(_versions(batch.dropDuplicates(version_key), version_col), w).write.format("delta").saveAsTable(table)
        return {"inserted": _last_commit_rows(spark, table), "updated": 0}
    target = spark.table(table)
    cols = target.columns
    match = [*keys, "valid_from", "_row_hash"]
    cond = F.expr(" and ".join(f"t.`{c}` <=> s.`{c}`" for c in match))
    head = batch.limit(SMALL_BATCH_ROWS + 1).toArrow()
    small = head.num_rows <= SMALL_BATCH_ROWS
    if small:
        if head.num_rows == 0:
            return {"inserted": 0, "updated": 0}  # an empty batch: no commit at all
        head = _distinct(head, version_key)
        batch = spark.createDataFrame(head)
        values = set(head.column(keys[0]).to_pylist())

        def holds(col: str):
            found = F.col(col).isin(sorted(v for v in values if v is not None))
            return found | F.col(col).isNull() if None in values else found

        target = target.where(holds(keys[0]))
        cond = cond & holds(f"t.`{keys[0]}`")
    else:
        batch = batch.dropDuplicates(version_key)
    with_scd = _versions(batch, version_col)
    # Every stored version of the batch's keys. Re-chaining them together with the batch (a version
    # already stored appears in both; dropDuplicates keeps one) gives each version its valid_to; the
    # MERGE updates only versions whose valid_to / is_current changed.
    batch_keys = with_scd.select(*keys).distinct()
    # A small batch is broadcast, here and as the MERGE source: the target is never shuffled.
    existing = target.join(F.broadcast(batch_keys) if small else batch_keys, on=keys, how="left_semi")
    if small:
        stored = existing.toArrow()
        if stored.num_rows == 0:
            _chain(with_scd, w).select(*cols).write.format("delta").mode("append").saveAsTable(table)
            return {"inserted": head.num_rows, "updated": 0}
        existing = spark.createDataFrame(stored)
    source = _chain(existing.select(*cols).unionByName(with_scd.select(*cols)).dropDuplicates(match), w)
    metrics = (DeltaTable.forName(spark, table).alias("t")
               .merge((F.broadcast(source) if small else source).alias("s"), cond)
               .whenMatchedUpdate(condition="not (t.valid_to <=> s.valid_to) or t.is_current <> s.is_current",
                                  set={"valid_to": "s.valid_to", "is_current": "s.is_current"})
               .whenNotMatchedInsertAll()
               .execute()).first()
    inserted = int(metrics["num_inserted_rows"]) if metrics is not None else 0
    return {"inserted": inserted, "updated": int(metrics["num_updated_rows"]) if metrics is not None else 0}


SMALL_BATCH_ROWS = 2000


def _versions(batch: DataFrame, version_col: str) -> DataFrame:
    return (batch.withColumn("valid_from", F.col(version_col))
            .withColumn("valid_to", F.lit(None).cast("timestamp"))
            .withColumn("is_current", F.lit(True)))


def _chain(df: DataFrame, w) -> DataFrame:
    """Each version is valid until the next version of its key; the last one is current."""
    return (df.withColumn("valid_to", F.lead("valid_from").over(w))
            .withColumn("is_current", F.col("valid_to").isNull()))


def _distinct(rows, columns: list[str]):
    """The first row of each distinct value of ``columns`` in an Arrow table."""
    seen: set = set()
    keep = []
    for i, value in enumerate(zip(*(rows.column(c).to_pylist() for c in columns), strict=True)):
        if value not in seen:
            seen.add(value)
            keep.append(i)
    return rows if len(keep) == rows.num_rows else rows.take(keep)


def _last_commit_rows(spark: SparkSession, table: str) -> int:
    from delta.tables import DeltaTable

    last = DeltaTable.forName(spark, table).history(1).select("operationMetrics").first()
    return int((last["operationMetrics"] or {}).get("numOutputRows", 0))


def replace_where_in(spark: SparkSession, df: DataFrame, table: str, column: str, values: list[str]) -> None:
    """Overwrite exactly the rows whose ``column`` is one of ``values`` (one file's rows, or the files
    of one run), so that re-running a load replaces instead of duplicating."""
    if not table_exists(spark, table):
        df.write.format("delta").saveAsTable(table)
        return
    df.writeTo(table).overwrite(F.col(column).isin(values))


def append_once(df: DataFrame, table: str, app_id: str) -> None:
    """Append ``df`` unless a write with the same ``app_id`` was already committed to ``table``.

    Uses Delta's idempotent-write transaction ids (``txnAppId``/``txnVersion``): a retry of the
    same write after a crash is skipped by Delta itself, with no scan of the table.
    """
    (df.write.format("delta").mode("append").option("txnAppId", app_id).option("txnVersion", 1)
     .saveAsTable(table))


def insert_missing(spark: SparkSession, df: DataFrame, table: str, keys: list[str]) -> int:
    """Insert the rows of ``df`` whose ``keys`` are not in ``table`` yet (MERGE, insert-if-absent).

    Existing rows are never touched, so replaying the same batch inserts nothing. Returns rows inserted.
    """
    from delta.tables import DeltaTable

    cond = " and ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    metrics = (DeltaTable.forName(spark, table).alias("t").merge(df.alias("s"), cond)
               .whenNotMatchedInsertAll().execute()).first()
    return int(metrics["num_inserted_rows"]) if metrics is not None else 0


def merge_changed(spark: SparkSession, df: DataFrame, table: str, keys: list[str],
                  ignore: tuple[str, ...] = ()) -> dict:
    """Keyed insert-or-update that only rewrites rows whose values changed (MERGE).

    Rows of ``df`` whose ``keys`` are new are inserted; existing rows are updated only when a column outside
    ``keys`` and ``ignore`` (e.g. a computed-at stamp) differs, null-safely. Merging the same rows again
    changes no row, so recomputing a slice (the hours touched by new events) is idempotent. Creates the
    table on first use. Returns counts: inserted, updated.
    """
    from delta.tables import DeltaTable

    if not table_exists(spark, table):
        df.write.format("delta").saveAsTable(table)
        return {"inserted": _last_commit_rows(spark, table), "updated": 0}
    compared = [c for c in df.columns if c not in keys and c not in ignore]
    cond = " and ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    changed = " or ".join(f"not (t.`{c}` <=> s.`{c}`)" for c in compared) or "false"
    metrics = (DeltaTable.forName(spark, table).alias("t").merge(df.alias("s"), cond)
               .whenMatchedUpdateAll(condition=changed).whenNotMatchedInsertAll().execute()).first()
    if metrics is None:
        return {"inserted": 0, "updated": 0}
    return {"inserted": int(metrics["num_inserted_rows"]), "updated": int(metrics["num_updated_rows"])}
