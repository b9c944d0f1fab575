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
