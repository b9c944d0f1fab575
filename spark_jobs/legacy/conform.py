"""Bronze rows of one legacy table -> typed, decoded, pseudonymised silver rows + quarantine.

A pure transform: ``conform(bronze_df, table, catalog, key, parent_keys)`` returns every input
row once, with its silver columns and ``_ok``. A rejected row (``_ok`` false) carries every rule
it broke (``_rules``), a message naming file, line, column, value and rule, and its raw values; an
accepted row carries the clear values of its direct identifiers (``_identities``). The loader
writes the result once, split on ``_ok``, so nothing is dropped and no row is computed twice.
"""

from __future__ import annotations

from itertools import chain

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from smartrehab.catalog import Catalog, Item, LegacyTable
from spark_jobs.common.pseudonym import pseudonym_col

META = ["_load_id", "_source_file", "_file_sha256", "_source_row", "_row_sha256", "_parse_error", "_raw_line"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DATE_PATTERNS = ("yyyyMMdd", "yyyy-M-d", "yyyy/M/d", "yyyy'年'M'月'd'日'", "yyyy.M.d")
DATETIME_PATTERNS = ("yyyy-M-d H:m:s", "yyyyMMddHHmmss", "yyyy/M/d H:m:s", "yyyy-M-d'T'H:m:s", "yyyy-M-d H:m",
                     "yyyyMMdd")


# Per accepted row, the clear values of its direct identifiers (for silver.restricted_identity).
IDENTITIES_TYPE = "array<struct<pseudonym:string,domain:string,item_code:string,clear_value:string>>"


def _normalised(col: Column) -> Column:
    """Full-width digits and punctuation to ASCII, trimmed; empty becomes null."""
    v = F.trim(F.translate(col, "０１２３４５６７８９－／：．", "0123456789-/:."))
    return F.when(v == "", F.lit(None)).otherwise(v)


def _parse(item: Item, v: Column) -> Column:
    t = item.data_type
    if t == "integer":
        return F.when(v.rlike(r"^[+-]?\d{1,18}$"), v.cast("bigint"))
    if t == "decimal":
        return F.when(v.rlike(r"^[+-]?\d{1,14}(\.\d+)?$"), v.cast("decimal(18,4)"))
    if t == "date":
        return F.coalesce(*(F.try_to_date(v, p) for p in DATE_PATTERNS))
    if t == "datetime":
        return F.coalesce(*(F.try_to_timestamp(v, F.lit(p)) for p in DATETIME_PATTERNS))
    if t == "id_number":
        return F.upper(v)
    return v


def id_checksum_ok(v: Column) -> Column:
    """GB 11643-1999: 17 digits, then the check character of their weighted sum mod 11."""
    total = sum(F.substring(v, i + 1, 1).cast("int") * w for i, w in enumerate(ID_WEIGHTS))
    check = F.substring(F.lit("10X98765432"), (total % 11) + 1, 1)
    return v.rlike(r"^\d{17}[\dX]$") & (F.substring(v, 18, 1) == check)


def _fail(cond: Column, rule: str, message: Column) -> tuple[Column, Column]:
    return F.when(cond, F.lit(rule)), F.when(cond, message)


def conform(bronze: DataFrame, table: LegacyTable, catalog: Catalog, key: str,
            parent_keys: dict[str, DataFrame] | None = None, small: bool = False) -> DataFrame:
    """``bronze`` holds the rows of one delivered file. ``parent_keys`` maps a referencing legacy column to a
    one-column DataFrame ``k`` holding the valid silver values (pseudonymised where the column is a direct
    identifier), each value once. ``small`` (a file of a few thousand rows) changes only the plan, not the
    result."""
    parent_keys = parent_keys or {}
    # Raw legacy columns get a prefix: Spark is case-insensitive, and a legacy column (HBSAG)
    # may share its name with its silver column (hbsag).
    raw_cols = [f"_raw_{c}" for c in table.columns]
    df = bronze.select(*META, *[F.col(c).alias(f"_raw_{c}") for c in table.columns])
    rules: list[Column] = []
    msgs: list[Column] = []
    where = F.concat(F.col("_source_file"), F.lit(" line "), F.col("_source_row").cast("string"), F.lit(": "))
    parse_err = F.col("_parse_error").isNotNull()
    rules.append(F.when(parse_err, F.col("_parse_error")))
    msgs.append(F.when(parse_err, F.concat(where, F.lit("row could not be read ("), F.col("_parse_error"),
                                           F.lit("): "), F.substring(F.coalesce("_raw_line", F.lit("")), 1, 120))))
    silver_cols: list[Column] = []
    identity_cols: list[tuple[Item, Column]] = []
    for it in table.items:
        raw = F.col(f"_raw_{it.legacy_column}")
        v = _normalised(raw)
        typed = _parse(it, v)
        shown = F.concat(F.lit(f"{it.legacy_column}='"), F.coalesce(raw, F.lit("")), F.lit("'"))
        if it.data_type in ("integer", "decimal", "date", "datetime"):
            r, m = _fail(~parse_err & v.isNotNull() & typed.isNull(), f"type:{it.legacy_column}",
                         F.concat(where, shown, F.lit(f" is not a valid {it.data_type}")))
            rules.append(r)
            msgs.append(m)
        if it.legacy_column in table.key or it.legacy_column == table.version_column:
            r, m = _fail(~parse_err & v.isNull(), f"required:{it.legacy_column}",
                         F.concat(where, F.lit(f"{it.legacy_column} is empty but identifies the record")))
            rules.append(r)
            msgs.append(m)
        if it.data_type == "code":
            ct = catalog.code_tables[it.code_table]
            codes = list(ct.labels)
            r, m = _fail(~parse_err & v.isNotNull() & ~v.isin(codes), f"code_table:{it.legacy_column}",
                         F.concat(where, shown, F.lit(f" is not in code table {ct.name} ({ct.standard})")))
            rules.append(r)
            msgs.append(m)
            label_map = F.create_map(*chain.from_iterable((F.lit(c), F.lit(lz)) for c, (lz, _) in ct.labels.items()))
            silver_cols.append(v.alias(it.silver_column))
            silver_cols.append(label_map[v].alias(f"{it.silver_column}_label"))
            continue
        if it.data_type == "id_number":
            r, m = _fail(~parse_err & v.isNotNull() & ~id_checksum_ok(F.upper(v)), f"id_checksum:{it.legacy_column}",
                         F.concat(where, F.lit(f"{it.legacy_column} fails the GB 11643 check digit")))
            rules.append(r)
            msgs.append(m)
        if it.is_direct_identifier:
            pk = pseudonym_col(key, it.silver_column, typed)
            silver_cols.append(pk.alias(it.silver_column))
            identity_cols.append((it, typed))
            continue
        silver_cols.append(typed.alias(it.silver_column))
    # Exact duplicates inside the file (the same line, by its checksum): the first copy wins, later copies are
    # quarantined. The first copy of each checksum comes from a window over the file's rows when the file is
    # small (within the one job), or else from a narrow aggregate of the checksums broadcast back, so that the
    # rows of a big file are never shuffled.
    readable = F.col("_parse_error").isNull()
    if small:
        df = df.withColumn("_dup_of", F.when(readable, F.min("_source_row").over(Window.partitionBy("_row_sha256"))))
    else:
        firsts = (bronze.where(readable).groupBy("_row_sha256")
                  .agg(F.count(F.lit(1)).alias("_copies"), F.min("_source_row").alias("_dup_of"))
                  .where(F.col("_copies") > 1).drop("_copies"))
        df = df.join(F.broadcast(firsts), "_row_sha256", "left")
    dup = readable & (F.col("_source_row") > F.coalesce("_dup_of", "_source_row"))
    rules.append(F.when(dup, F.lit("duplicate_row")))
    msgs.append(F.when(dup, F.concat(where, F.lit("exact duplicate of line "), F.col("_dup_of").cast("string"))))

    df = df.select(*META, *raw_cols, *silver_cols,
                   F.filter(F.array(*rules), lambda x: x.isNotNull()).alias("_rules"),
                   F.filter(F.array(*msgs), lambda x: x.isNotNull()).alias("_messages"))
    # Orphan references, in pseudonym space.
    for col, parent in parent_keys.items():
        it = table.item(col)
        flag = f"_ref_ok_{col}"
        df = df.join(parent.select(F.col("k").alias(it.silver_column), F.lit(True).alias(flag)),
                     on=it.silver_column, how="left")
        bad_flag = f"_orphan_{col}"
        df = df.withColumn(bad_flag, F.col(it.silver_column).isNotNull() & F.col(flag).isNull()
                           & (F.size("_rules") == 0))
        target = table.references[col]
        df = (df.withColumn("_rules", F.when(F.col(bad_flag), F.array_append("_rules", F.lit(f"orphan_reference:{col}")))
                            .otherwise(F.col("_rules")))
              .withColumn("_messages", F.when(F.col(bad_flag), F.array_append("_messages", F.concat(
                  where, F.lit(f"{col} points to no record of {target}")))).otherwise(F.col("_messages")))
              .drop(flag, bad_flag))
    good = F.size("_rules") == 0
    silver_names = [c for c in df.columns if not c.startswith("_")]
    ids = [F.struct(F.col(it.silver_column).alias("pseudonym"), F.lit(it.silver_column).alias("domain"),
                    F.lit(it.item_code).alias("item_code"), F.upper(F.trim(typed_col)).alias("clear_value"))
           for it, typed_col in identity_cols]
    return df.select(
        *silver_names, "_load_id", "_source_file", "_file_sha256", "_source_row", good.alias("_ok"),
        F.lit(table.name).alias("_legacy_table"), "_rules", "_raw_line",
        F.when(~good, F.concat_ws("; ", "_messages")).alias("_message"),
        F.when(~good, F.to_json(F.struct(*[F.col(f"_raw_{c}").alias(c) for c in table.columns]))).alias("_raw_values"),
        (F.when(good, F.filter(F.array(*ids), lambda x: x["pseudonym"].isNotNull())) if ids
         else F.lit(None).cast(IDENTITIES_TYPE)).alias("_identities"))
