"""Scoring: the champion scores every unit and feed day; the command centre's current picture per centre.

Loads ``models:/security_situation@champion`` after checking its signature against the feature
contract (refuses on a mismatch, nothing written). Every unit-day of the feed window gets a row in
``gold.security_situation_score``: score 0-100, level 红/橙/黄/蓝 (``contract.LEVELS``), the
probability and anomaly parts, the main drivers in Chinese and the freshness of its inputs; a row
without enough input (no feed data, part of a day, no norm yet, a unit the legacy dimension does not
know) gets the level 数据不足 and the reason instead of a score. ``gold.security_situation_current``
holds, per centre, the latest day with data: units per level, the worst unit and its drivers, and how
far the centre's feeds lag behind the newest feed hour. Both are merged in place: re-running changes
nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ml.common import registry
from ml.security_situation import contract, features, model

SCORES_TABLE = "gold.security_situation_score"
CURRENT_TABLE = "gold.security_situation_current"
CURRENT_SQL = Path(__file__).with_name("current.sql")


def score_frame(pdf, champion, version):
    """The score rows (pandas) of a feature frame."""
    ok = features.scorable(pdf).to_numpy()
    out = pdf[contract.KEYS].copy()
    out["score"] = None
    out["p_incident_7d"] = None
    out["anomaly"] = None
    out["level"] = contract.INSUFFICIENT
    out["drivers_zh"] = [features.insufficiency(r) for r in pdf.to_dict("records")]
    out["drivers"] = "[]"
    if ok.any():
        X = pdf[ok]
        p, a, sc = champion.parts(X)
        items = [model.drivers(r) for r in X.to_dict("records")]
        out.loc[ok, "score"] = sc
        out.loc[ok, "p_incident_7d"] = p.round(4)
        out.loc[ok, "anomaly"] = a.round(4)
        out.loc[ok, "level"] = [contract.level(v) for v in sc]
        out.loc[ok, "drivers_zh"] = [model.drivers_text(d) for d in items]
        out.loc[ok, "drivers"] = [json.dumps(d, ensure_ascii=False) for d in items]
    for c in ("score", "p_incident_7d", "anomaly"):
        out[c] = out[c].astype("float64")
    out["hours_with_data"] = pdf["hours_with_data"].astype("int32")
    out["inputs_complete"] = (pdf["hours_with_data"] >= 24).to_numpy()
    out["freshness_zh"] = ["完整(24/24小时)" if h >= 24 else f"数据不全：{h}/24小时有数据"
                           for h in pdf["hours_with_data"].astype(int)]
    out["in_legacy"] = pdf["in_legacy"].astype(bool)
    out["model_name"] = contract.MODEL.name
    out["model_version"] = str(version.version)
    out["run_id"] = version.run_id
    return out


def current(spark, scores_table: str, silver: str = "silver"):
    """Per centre: the latest scored day, units per level, the worst unit, feed lag."""
    import jinja2

    sql = jinja2.Template(CURRENT_SQL.read_text(encoding="utf-8"), undefined=jinja2.StrictUndefined).render(
        scores=scores_table, silver=silver, insufficient=contract.INSUFFICIENT)
    return spark.sql(sql)


def score(spark, s, log=print, scores_table: str = SCORES_TABLE, current_table: str = CURRENT_TABLE) -> dict:
    import pyarrow as pa

    from spark_jobs.common.delta import merge_changed

    champion, version, _ = registry.champion(s, contract.MODEL, contract.FEATURE_NAMES)
    pdf = features.to_pandas(features.build(spark), features.incidents_known_until(spark))
    if pdf.empty:
        raise features.FeatureError("no unit-days to score: the feed window holds no day")
    out = score_frame(pdf, champion, version)
    out["scored_at"] = datetime.now(UTC).replace(tzinfo=None)
    rows = spark.createDataFrame(pa.Table.from_pandas(out, preserve_index=False))
    counts = merge_changed(spark, rows, scores_table, contract.KEYS, ignore=("scored_at",))
    cur = current(spark, scores_table).localCheckpoint(eager=True)
    merge_changed(spark, cur, current_table, ["centre"])
    levels = out["level"].value_counts().to_dict()
    last = out["score_date"].max()
    today = out[out["score_date"] == last]["level"].value_counts().to_dict()
    log(f"security model: scored {len(out)} unit-days with version {version.version} ({levels}); on {last}: {today}; "
        f"{counts['inserted']} new, {counts['updated']} changed rows")
    return {"scored": len(out), "model_version": str(version.version), "levels": levels, **counts}
