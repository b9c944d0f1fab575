"""The relapse-risk feature frame, as of a day, from silver (and the outcome view of gold).

One place: ``features.sql`` computes every feature for a set of *occasions* (an admission seen as
of one day); this module only says which occasions (the day before each release for training, today
and each comprehensive assessment for people in a centre for scoring) and checks the result against
the contract (``contract.py``).
"""

from __future__ import annotations

from pathlib import Path

from ml.common.lake import FeatureError, data_as_of  # noqa: F401 - callers use features.data_as_of
from ml.relapse_risk import contract

SQL = Path(__file__).with_name("features.sql")
SOURCE_TABLES = ("person", "admission", "zone_placement", "drug_use_history", "assessment", "scl90_result",
                 "pf16_result", "relapse_risk_result", "behaviour_score_event", "behaviour_score_monthly", "visit",
                 "family_call", "family_member", "training_session", "education_hours_monthly")
OCCASIONS_VIEW = "relapse_occasions"


def check_sources(spark, silver: str = "silver", gold_staging: str = "gold_staging") -> None:
    missing = [f"{silver}.{t}" for t in SOURCE_TABLES if not spark.catalog.tableExists(f"{silver}.{t}")]
    if not spark.catalog.tableExists(f"{gold_staging}.int_release_outcomes"):
        missing.append(f"{gold_staging}.int_release_outcomes")
    if missing:
        raise FeatureError("relapse features need tables that are not there: " + ", ".join(missing)
                           + " (load these legacy tables and run the gold build)")


def training_occasions(spark, silver: str = "silver"):
    """For every release: the day before it (``pre_release``: what was known when the person left) and
    the day of each comprehensive assessment during the stay (``assessment``), so that the model is
    valid at both moments it is used."""
    check_sources(spark, silver)
    return spark.sql(f"""
        select admission_id, date_sub(released_on, 1) as as_of_date, 'pre_release' as occasion
        from {silver}.admission
        where is_current and released_on is not null and released_on > admitted_on
        union
        select s.admission_id, s.assessment_date as as_of_date, 'assessment' as occasion
        from {silver}.assessment as s
        inner join {silver}.admission as a on s.admission_id = a.admission_id and a.is_current
        where s.is_current and s.assessment_type in ('06', '07', '08') and a.released_on is not null
          and s.assessment_date >= a.admitted_on and s.assessment_date < date_sub(a.released_on, 1)
    """)


def scoring_occasions(spark, as_of, silver: str = "silver"):
    """Everyone in a centre on ``as_of`` (occasion ``current``) and each of their comprehensive
    assessments so far (``assessment``)."""
    check_sources(spark, silver)
    day = f"date'{as_of:%Y-%m-%d}'"
    return spark.sql(f"""
        select admission_id, {day} as as_of_date, 'current' as occasion
        from {silver}.admission
        where is_current and admitted_on <= {day} and (released_on is null or released_on > {day})
        union
        select s.admission_id, s.assessment_date as as_of_date, 'assessment' as occasion
        from {silver}.assessment as s
        inner join {silver}.admission as a on s.admission_id = a.admission_id and a.is_current
        where s.is_current and s.assessment_type in ('06', '07', '08') and s.assessment_date <= {day}
          and a.admitted_on <= {day} and (a.released_on is null or a.released_on > {day})
    """)


def build(spark, occasions, silver: str = "silver", gold_staging: str = "gold_staging"):
    """The feature frame (a Spark DataFrame with exactly ``contract.COLUMNS``) for ``occasions``."""
    check_sources(spark, silver, gold_staging)
    # The query reads the occasions in every one of its parts: computed once (a few thousand rows),
    # they are not re-derived from admission and assessment each time (half the Spark jobs at SF0.01).
    occasions.localCheckpoint(eager=True).createOrReplaceTempView(OCCASIONS_VIEW)
    import jinja2

    sql = jinja2.Template(SQL.read_text(encoding="utf-8"), undefined=jinja2.StrictUndefined).render(
        silver=silver, gold_staging=gold_staging)
    frame = spark.sql(sql)
    if sorted(frame.columns) != sorted(contract.COLUMNS):
        raise FeatureError(f"features.sql returns {frame.columns}, the contract says {contract.COLUMNS}")
    return frame.select(*contract.COLUMNS)


def check_frame(pdf, purpose: str) -> None:
    """Refuse a frame a model cannot use: no rows, or a feature column with no value at all (its source
    table empty or not loaded)."""
    if pdf.empty:
        raise FeatureError(f"no occasions to {purpose}: the cohort is empty")
    empty = [f for f in contract.NUMERIC if pdf[f].isna().all()]
    if empty:
        sources = {f.name: f.source for f in contract.FEATURES}
        raise FeatureError(f"cannot {purpose}: feature(s) with no value in any row: "
                           + ", ".join(f"{c} (from {sources[c]})" for c in empty)
                           + "; check that those legacy tables are loaded")
