"""scd2_merge, the one SCD2 helper: first load, new keys (append), new and late versions (a replace of the
changed rows; MERGE for large batches), replays."""

from __future__ import annotations

from datetime import datetime

import pytest

pytestmark = pytest.mark.spark

TABLE = "silver.scd2_helper_test"


def ts(day: int) -> datetime:
    return datetime(2026, 3, day, 8, 0, 0)


@pytest.fixture()
def merge(spark):
    from spark_jobs.common.delta import row_hash, scd2_merge

    spark.sql(f"drop table if exists {TABLE}")

    def run(rows: list[tuple], keys=("k",), hashed=("k", "sub", "v", "updated_at")) -> dict:
        df = spark.createDataFrame(rows, "k string, sub string, v string, updated_at timestamp")
        return scd2_merge(spark, row_hash(df, list(hashed)), TABLE, list(keys), "updated_at")

    yield run
    spark.sql(f"drop table if exists {TABLE}")


def state(spark) -> list[tuple]:
    return sorted((r.k, r.sub, r.v, r.valid_from, r.valid_to, r.is_current)
                  for r in spark.table(TABLE).collect())


def last_operation(spark) -> str:
    return spark.sql(f"describe history {TABLE} limit 1").first()["operation"]


def last_metrics(spark) -> dict:
    return spark.sql(f"describe history {TABLE} limit 1").first()["operationMetrics"]


def test_new_keys_are_appended_and_chained_within_the_batch(spark, merge):
    merge([("a", "-", "1", ts(1))])
    got = merge([("b", "-", "1", ts(2)), ("b", "-", "2", ts(3))])
    assert got == {"inserted": 2, "updated": 0}
    assert last_operation(spark) == "WRITE"  # no MERGE needed: b was never seen
    assert state(spark) == [
        ("a", "-", "1", ts(1), None, True),
        ("b", "-", "1", ts(2), ts(3), False),
        ("b", "-", "2", ts(3), None, True),
    ]


def test_a_new_version_closes_the_current_one(spark, merge):
    merge([("a", "-", "1", ts(1)), ("c", "-", "1", ts(1))])
    got = merge([("a", "-", "2", ts(5))])
    assert got == {"inserted": 1, "updated": 1}
    # One commit replacing the one stored row that changed (c's row is not touched) and adding the new one.
    assert last_operation(spark) == "WRITE"
    assert (last_metrics(spark)["numDeletedRows"], last_metrics(spark)["numOutputRows"]) == ("1", "2")
    assert state(spark) == [
        ("a", "-", "1", ts(1), ts(5), False),
        ("a", "-", "2", ts(5), None, True),
        ("c", "-", "1", ts(1), None, True),
    ]


def test_a_late_version_is_slotted_into_the_history(spark, merge):
    merge([("a", "-", "1", ts(1)), ("a", "-", "3", ts(9))])
    got = merge([("a", "-", "2", ts(4))])
    assert got == {"inserted": 1, "updated": 1}  # only version 1's valid_to moves
    assert state(spark) == [
        ("a", "-", "1", ts(1), ts(4), False),
        ("a", "-", "2", ts(4), ts(9), False),
        ("a", "-", "3", ts(9), None, True),
    ]


def test_replaying_a_batch_changes_nothing(spark, merge):
    batch = [("a", "-", "1", ts(1)), ("a", "-", "2", ts(2)), ("b", "-", "1", ts(2))]
    merge(batch)
    merge([("a", "-", "3", ts(3))])
    before = state(spark)
    version = spark.sql(f"describe history {TABLE} limit 1").first()["version"]
    assert merge(batch) == {"inserted": 0, "updated": 0}
    assert merge([("a", "-", "3", ts(3))]) == {"inserted": 0, "updated": 0}
    assert state(spark) == before
    # A replay finds every version stored with its valid_to: no commit at all.
    assert spark.sql(f"describe history {TABLE} limit 1").first()["version"] == version


def test_an_empty_batch_commits_nothing(spark, merge):
    merge([("a", "-", "1", ts(1))])
    version = spark.sql(f"describe history {TABLE} limit 1").first()["version"]
    assert merge([]) == {"inserted": 0, "updated": 0}
    assert spark.sql(f"describe history {TABLE} limit 1").first()["version"] == version


def test_composite_keys_leave_sibling_rows_alone(spark, merge):
    """Pruning uses the first key column only: rows sharing it under another second key keep their chain."""
    keys = ("k", "sub")
    merge([("a", "x", "1", ts(1)), ("a", "y", "1", ts(1))], keys)
    merge([("a", "x", "2", ts(3))], keys)
    assert state(spark) == [
        ("a", "x", "1", ts(1), ts(3), False),
        ("a", "x", "2", ts(3), None, True),
        ("a", "y", "1", ts(1), None, True),
    ]


def test_a_stored_version_caught_by_the_replace_predicate_is_written_back_as_it_was(spark, merge):
    """The replace picks rows by first key and row hash. With a hash that leaves the key out, a's unchanged
    first version shares b's changed version's hash: it is replaced too and must come back unchanged."""
    value_only = ("v",)
    merge([("a", "-", "1", ts(1)), ("a", "-", "2", ts(3)), ("b", "-", "1", ts(1))], hashed=value_only)
    got = merge([("a", "-", "3", ts(5)), ("b", "-", "2", ts(4))], hashed=value_only)
    assert got == {"inserted": 2, "updated": 2}
    assert last_metrics(spark)["numDeletedRows"] == "3"  # a's two stored versions and b's
    assert state(spark) == [
        ("a", "-", "1", ts(1), ts(3), False),
        ("a", "-", "2", ts(3), ts(5), False),
        ("a", "-", "3", ts(5), None, True),
        ("b", "-", "1", ts(1), ts(4), False),
        ("b", "-", "2", ts(4), None, True),
    ]


def test_large_batches_take_the_full_table_path_with_the_same_result(spark, merge, monkeypatch):
    import spark_jobs.common.delta as delta

    first = [("a", "-", "1", ts(1)), ("a", "-", "3", ts(9)), ("b", "-", "1", ts(1))]
    later = [("a", "-", "2", ts(4)), ("b", "-", "2", ts(6)), ("d", "-", "1", ts(6))]
    merge(first)
    merge(later)
    pruned = state(spark)
    monkeypatch.setattr(delta, "SMALL_BATCH_ROWS", 1)  # 3 rows > 1: no local copy, no pruning, no append
    spark.sql(f"drop table {TABLE}")
    merge(first)
    assert merge(later) == {"inserted": 3, "updated": 2}
    assert last_operation(spark) == "MERGE"
    assert state(spark) == pruned


def test_a_first_load_chains_repeated_keys_and_keeps_one_copy_of_a_version(spark, merge):
    got = merge([("a", "-", "1", ts(1)), ("a", "-", "1", ts(1)), ("a", "-", "2", ts(2)), ("b", "-", "1", ts(1))])
    assert got == {"inserted": 3, "updated": 0}
    assert state(spark) == [
        ("a", "-", "1", ts(1), ts(2), False),
        ("a", "-", "2", ts(2), None, True),
        ("b", "-", "1", ts(1), None, True),
    ]
