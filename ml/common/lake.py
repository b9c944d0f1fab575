"""What the models read from the lake in common: the error for unusable features and the data's last day."""

from __future__ import annotations


class FeatureError(ValueError):
    """The features cannot be built or are unusable: says which table or column, and what to do."""


def data_as_of(spark, silver: str = "silver"):
    """The latest day in the legacy data (as dbt's marts count it): the last admission or release."""
    row = spark.sql(f"select greatest(max(admitted_on), max(released_on)) as d from {silver}.admission "
                    "where is_current").first()
    if row is None or row["d"] is None:
        raise FeatureError(f"{silver}.admission is empty: load the legacy extracts first")
    return row["d"]


def register_known_until(spark, legacy_table: str):
    """The last day a legacy register is complete through: the day before its newest delivery (a delivery
    is the system's state on its day, which may still be in progress). From ``audit.loaded_files``."""
    from datetime import timedelta

    if not spark.catalog.tableExists("audit.loaded_files"):
        raise FeatureError("audit.loaded_files is missing: load the legacy extracts first (legacy_ingest)")
    row = spark.sql("select max(delivery_day) as d from audit.loaded_files where legacy_table = "
                    f"'{legacy_table}'").first()
    if row is None or row["d"] is None:
        raise FeatureError(f"no delivery of {legacy_table} was ever loaded (audit.loaded_files): its events "
                           "are unknown; add the table to the legacy deliveries")
    return row["d"] - timedelta(days=1)
