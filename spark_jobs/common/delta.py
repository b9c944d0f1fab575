"""The one place where the platform changes rows of Delta tables (MERGE, replace where).

``scd2_merge`` keeps every version of a record (valid_from / valid_to / is_current) and is
idempotent: merging the same batch twice changes nothing, and a version that arrives late
(older than the current one) is slotted into the history in its place; it picks the cheapest
single commit that does so (nothing, an append, a replace of the changed rows, or a MERGE for a
batch too large to chain in the driver).
``merge_changed`` is the plain keyed insert-or-update (audit tables, identities, feed aggregates)
that rewrites a row only when a value changed; ``insert_missing`` inserts rows whose key is new
and never touches others. ``replace_where_in`` overwrites the rows of one load (quarantine) so
that re-running a load replaces instead of duplicating.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.common.sql import ident, lit

SCD2_COLUMNS = ("valid_from", "valid_to", "is_current", "_row_hash")
# What row_hash writes for a null, and between columns.
NULL_MARK, SEPARATOR = "\u2400", "\u241f"


def table_exists(spark: SparkSession, name: str) -> bool:
    return spark.catalog.tableExists(name)


def row_hash(df: DataFrame, columns: list[str]) -> DataFrame:
    """Adds ``_row_hash``: SHA-256 of the business columns, to tell real changes from re-sends."""
    parts = ", ".join(f"coalesce(CAST({ident(c)} AS STRING), {lit(NULL_MARK)})" for c in columns)
    return df.withColumn("_row_hash", F.expr(f"sha2(concat_ws({lit(SEPARATOR)}, {parts}), 256)"))


def scd2_merge(spark: SparkSession, batch: DataFrame | pa.Table, table: str, keys: list[str], version_col: str) -> dict:
    """Merge versions in ``batch`` (must carry ``_row_hash`` and ``version_col``) into ``table``.

    Returns counts: versions inserted, existing versions re-chained (updated).

    A batch of at most SMALL_BATCH_ROWS rows (a legacy file of an incremental day) is merged from the
    driver (``_merge_small``); it may come as an Arrow table already in the driver. A larger batch (a full
    load) is merged from its plan against the whole table.
    """
    from delta.tables import DeltaTable

    if isinstance(batch, pa.Table):
        if batch.num_rows <= SMALL_BATCH_ROWS and table_exists(spark, table):
            return _merge_small(spark, batch, table, spark.table(table), keys, version_col)
        batch = spark.createDataFrame(batch)

    version_key = [*keys, version_col, "_row_hash"]
    w = Window.partitionBy(*keys).orderBy(F.col("valid_from").asc(), F.col("_row_hash").asc())
    if not table_exists(spark, table):
        # First load: the chain is computed on the batch alone and written in one commit. When no key occurs
        # twice (a full extract holds each record once), every version is current: found from the key columns
        # alone, so the batch's rows are not shuffled.
        repeated = batch.groupBy(*keys).count().where(F.col("count") > 1).limit(1).count() > 0
        first = _chain(_versions(batch.dropDuplicates(version_key), version_col), w) if repeated else \
            _versions(batch, version_col)
        first.write.format("delta").saveAsTable(table)
        return {"inserted": _last_commit_rows(spark, table), "updated": 0}
    target = spark.table(table)
    head = batch.limit(SMALL_BATCH_ROWS + 1).toArrow()
    if head.num_rows <= SMALL_BATCH_ROWS:
        return _merge_small(spark, head, table, target, keys, version_col)
    cols = target.columns
    match = [*keys, "valid_from", "_row_hash"]
    with_scd = _versions(batch.dropDuplicates(version_key), version_col)
    # Every stored version of the batch's keys. Re-chaining them together with the batch (a version
    # already stored appears in both; dropDuplicates keeps one) gives each version its valid_to; the
    # MERGE updates only versions whose valid_to / is_current changed.
    existing = target.join(with_scd.select(*keys).distinct(), on=keys, how="left_semi")
    source = _chain(existing.select(*cols).unionByName(with_scd.select(*cols)).dropDuplicates(match), w)
    return _merge_versions(DeltaTable.forName(spark, table), source, match)


SMALL_BATCH_ROWS = 5000


def _merge_versions(target, source: DataFrame, match: list[str], condition=None) -> dict:
    """The SCD2 MERGE: a source version already stored gets its valid_to / is_current (when they changed),
    a new one is inserted."""
    cond = F.expr(" and ".join(f"t.`{c}` <=> s.`{c}`" for c in match))
    metrics = (target.alias("t").merge(source.alias("s"), cond if condition is None else cond & condition)
               .whenMatchedUpdate(condition="not (t.valid_to <=> s.valid_to) or t.is_current <> s.is_current",
                                  set={"valid_to": "s.valid_to", "is_current": "s.is_current"})
               .whenNotMatchedInsertAll()
               .execute()).first()
    if metrics is None:
        return {"inserted": 0, "updated": 0}
    return {"inserted": int(metrics["num_inserted_rows"]), "updated": int(metrics["num_updated_rows"])}


def _merge_small(spark: SparkSession, head, table: str, target: DataFrame, keys: list[str], version_col: str) -> dict:
    """A small batch (an Arrow table in the driver): the stored versions of its keys are read once, by key
    value (Delta skips every data file whose statistics cannot hold them), and the chain of stored and new
    versions is computed here. Then one commit at most: nothing when every version is stored with its
    valid_to already (a replay), an append when no stored version changes, else a replace of only the
    stored versions that change, together with the new ones (``_replace_versions``)."""
    if head.num_rows == 0:
        return {"inserted": 0, "updated": 0}  # an empty batch: no commit at all
    head = _distinct(head, [*keys, version_col, "_row_hash"])
    stored = target.where(_holds(ident(keys[0]), head.column(keys[0]).to_pylist())).toArrow()
    # The table's columns as Arrow types, nullable (a new version may leave any column empty).
    schema = pa.schema([f.with_nullable(True) for f in stored.schema])
    cols = schema.names
    match = [*keys, "valid_from", "_row_hash"]
    old = stored.to_pylist()
    seen = {tuple(r[c] for c in match) for r in old}
    new = []
    for r in head.to_pylist():
        v = {c: r.get(c) for c in cols}
        v.update(valid_from=r[version_col], valid_to=None, is_current=True)
        if tuple(v[c] for c in match) not in seen:
            new.append(v)
    before = [(r["valid_to"], r["is_current"]) for r in old]
    _chain_rows(old + new, keys)  # other keys sharing the first key column are chained too, unchanged
    changed = [r for r, (valid_to, current) in zip(old, before, strict=True)
               if r["valid_to"] != valid_to or r["is_current"] != current]
    if not new and not changed:
        return {"inserted": 0, "updated": 0}  # every version is stored as it should be: no commit
    if not changed:
        spark.createDataFrame(pa.Table.from_pylist(new, schema=schema)).write.format("delta").mode("append") \
            .saveAsTable(table)
        return {"inserted": len(new), "updated": 0}
    _replace_versions(spark, table, keys[0], old, changed, new, schema)
    return {"inserted": len(new), "updated": len(changed)}


def _replace_versions(spark: SparkSession, table: str, key: str, old: list[dict], changed: list[dict],
                      new: list[dict], schema: pa.Schema) -> None:
    """One commit that replaces the ``changed`` stored versions (re-chained) and adds the ``new`` ones.

    The replaced rows are chosen by a predicate on the first key column and the row hash (a version's
    content): every stored row whose first key and hash are among those of the changed and new versions.
    That can take in a stored version that did not change (when the hash leaves out the key, one key's hash
    can meet another key's); it is in ``old`` (every stored version of the batch's first-key values) and is
    written back as it was. Unlike a MERGE, the replace joins nothing: the new rows are known here, so it
    only finds the rows matching the predicate, marks them deleted (deletion vectors, no file rewritten)
    and appends. bench/README.md has what it saved.
    """
    firsts = {r[key] for r in changed + new}
    hashes = {r["_row_hash"] for r in changed + new}
    rewritten = [r for r in old if r[key] in firsts and r["_row_hash"] in hashes]
    rows = spark.createDataFrame(pa.Table.from_pylist(rewritten + new, schema=schema))
    rows.writeTo(table).overwrite(F.expr(f"({_holds(ident(key), firsts)}) AND _row_hash IN "
                                         f"({', '.join(lit(h) for h in sorted(hashes))})"))


def _holds(col: str, values) -> str:
    """SQL: ``col`` (an SQL name) holds one of ``values`` (an IN list of literals: one Py4J call for any
    number of values, where Column.isin makes several a value)."""
    values = set(values)
    found = [f"{col} IN ({', '.join(lit(v) for v in sorted(values - {None}))})"] if values - {None} else []
    return " OR ".join(found + ([f"{col} IS NULL"] if None in values else [])) or "false"


def _versions(batch: DataFrame, version_col: str) -> DataFrame:
    return (batch.withColumn("valid_from", F.col(version_col))
            .withColumn("valid_to", F.lit(None).cast("timestamp"))
            .withColumn("is_current", F.lit(True)))


def _chain(df: DataFrame, w) -> DataFrame:
    """Each version is valid until the next version of its key; the last one is current."""
    return (df.withColumn("valid_to", F.lead("valid_from").over(w))
            .withColumn("is_current", F.col("valid_to").isNull()))


def _chain_rows(rows: list[dict], keys: list[str]) -> None:
    """``_chain`` on rows in the driver, in place: the same order (valid_from, then _row_hash, per key)."""
    def order(r):  # nulls first, as Spark's ascending order
        return tuple((r[c] is not None, r[c]) for c in (*keys, "valid_from", "_row_hash"))

    rows = sorted(rows, key=order)
    for r, nxt in zip(rows, [*rows[1:], None], strict=True):
        same = nxt is not None and all(nxt[k] == r[k] for k in keys)
        r["valid_to"] = nxt["valid_from"] if same else None
        r["is_current"] = not same


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
