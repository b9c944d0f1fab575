"""Fairness report: the model's behaviour per group (fairlearn ``MetricFrame``).

Groups: sex, ethnicity (汉族 / 少数民族), age band and centre. Per group: ROC-AUC, calibration gap
(mean predicted minus observed relapse rate), selection rate and false-positive rate at the
operating threshold (the 高 band). A gap between a group and the rest of the holdout above the
tolerance is flagged, for groups with at least ``MIN_GROUP`` people in the holdout (smaller ones
are reported as 样本不足, too few to judge).
"""

from __future__ import annotations

import numpy as np

from ml.relapse_risk import contract
from ml.relapse_risk.model import OPERATING_THRESHOLD

# Tolerances (absolute differences from the overall holdout value).
TOLERANCE = {"roc_auc": 0.10, "calibration_gap": 0.10, "selection_rate": 0.15, "false_positive_rate": 0.15}
MIN_GROUP = 30


def _auc(y_true, y_pred):
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    return float(roc_auc_score(y_true, y_pred)) if len(np.unique(y_true)) == 2 else float("nan")


def _calibration_gap(y_true, y_pred):
    return float(np.mean(y_pred) - np.mean(y_true))


def report(frame, p, threshold: float = OPERATING_THRESHOLD):
    """A long table: group, value, n, each metric, the overall value, the gap and whether it is flagged."""
    import pandas as pd
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate

    y = frame[contract.LABEL].astype(int).to_numpy()
    p = np.asarray(p, dtype=float)
    decided = (p >= threshold).astype(int)
    rows = []
    for group in contract.GROUPS:
        prob = MetricFrame(metrics={"roc_auc": _auc, "calibration_gap": _calibration_gap},
                           y_true=y, y_pred=p, sensitive_features=frame[group].astype(str).to_numpy())
        hard = MetricFrame(metrics={"selection_rate": selection_rate, "false_positive_rate": false_positive_rate},
                           y_true=y, y_pred=decided, sensitive_features=frame[group].astype(str).to_numpy())
        counts = frame[group].astype(str).value_counts()
        by = pd.concat([prob.by_group, hard.by_group], axis=1)
        overall = {**prob.overall.to_dict(), **hard.overall.to_dict()}
        for value, r in by.iterrows():
            n = int(counts.get(value, 0))
            for metric, v in r.items():
                gap = float(v - overall[metric]) if not np.isnan(v) else float("nan")
                judged = n >= MIN_GROUP and not np.isnan(gap)
                rows.append({"group": group, "group_zh": contract.GROUPS[group], "value": str(value), "n": n,
                             "metric": metric, "value_metric": float(v), "overall": float(overall[metric]),
                             "gap": gap, "tolerance": TOLERANCE[metric],
                             "flagged": bool(judged and abs(gap) > TOLERANCE[metric]),
                             "note": "" if judged else "样本不足"})
    return pd.DataFrame(rows)
