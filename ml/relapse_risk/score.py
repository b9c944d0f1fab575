"""Daily scoring: the champion scores everyone in a centre (today and at each comprehensive assessment).

Loads ``models:/relapse_risk@champion``, checks its signature against the feature contract and
refuses on a mismatch (nothing written); computes the score, the band and the top factors of every
row, then merges all rows into ``gold.relapse_risk_score`` in one Delta commit (re-running the same
day changes nothing). PSI drift of the features and the score of the people in a centre today
against those in a centre when the model was trained goes to ``gold.relapse_risk_drift`` on every
run; a column above 0.25 alerts.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from ml.common import registry
from ml.relapse_risk import contract, drift, explain, features, model

SCORES_TABLE = "gold.relapse_risk_score"
DRIFT_TABLE = "gold.relapse_risk_drift"
SCORE_KEYS = ["person_pk", "admission_id", "as_of_date", "occasion"]


def score(spark, s, log=print, scores_table: str = SCORES_TABLE, drift_table: str = DRIFT_TABLE) -> dict:
    import pyarrow as pa

    from spark_jobs.common.delta import merge_changed

    champion, version, ref = registry.champion(s, contract.MODEL, contract.FEATURE_NAMES,
                                              reference="report/drift_reference.json")
    as_of = features.data_as_of(spark)
    frame = features.build(spark, features.scoring_occasions(spark, as_of)).toPandas()
    features.check_frame(frame, "score")
    X = frame[contract.FEATURE_NAMES]
    p = champion.predict_proba(X)[:, 1]
    factors = explain.top_factors(champion, X)
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    out = frame[["person_pk", "admission_id", "centre", "as_of_date", "occasion"]].copy()
    out["score"] = p.round(6)
    out["risk_band"] = [model.band(v) for v in p]
    out["top_factors_zh"] = ["；".join(f["text"] for f in fs) for fs in factors]
    out["top_factors"] = [json.dumps(fs, ensure_ascii=False) for fs in factors]
    out["model_name"] = contract.MODEL.name
    out["model_version"] = str(version.version)
    out["run_id"] = version.run_id
    out["scored_at"] = scored_at
    batch = str(uuid.uuid4())
    today = (frame["occasion"] == "current").to_numpy()
    checks = drift.compare(ref, X[today], p[today])
    rows = spark.createDataFrame(pa.Table.from_pandas(out, preserve_index=False))
    counts = merge_changed(spark, rows, scores_table, SCORE_KEYS, ignore=("scored_at",))

    alerts = [c["column"] for c in checks if c["alert"]]
    drift_rows = [{"scoring_run_id": batch, "as_of_date": as_of, "model_version": str(version.version),
                   "column_name": c["column"], "psi": float(c["psi"]), "alert": bool(c["alert"]),
                   "scored_at": scored_at} for c in checks]
    drift_df = spark.createDataFrame(pa.Table.from_pylist(drift_rows))
    merge_changed(spark, drift_df, drift_table, ["as_of_date", "model_version", "column_name"],
                  ignore=("scoring_run_id", "scored_at"))
    if alerts:
        log(f"ALERT relapse model drift: PSI above {drift.ALERT_PSI} for {', '.join(alerts)} "
            f"(model version {version.version}, as of {as_of}); see {drift_table}")
    log(f"relapse model: scored {len(out)} occasions ({(out['occasion'] == 'current').sum()} people in the centres "
        f"on {as_of}) with version {version.version}; {counts['inserted']} new, {counts['updated']} changed rows")
    return {"scored": len(out), "model_version": str(version.version), "drift_alerts": alerts, **counts}
