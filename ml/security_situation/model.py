"""The model: a classifier of "an incident in this unit within 7 days" and an isolation forest of the
day against the unit's own norm, in one estimator registered in MLflow; the score, the level and the
drivers of a row.

No separate calibration step. Both candidates are fitted on the logistic loss, so their outputs are
probabilities already; a Platt calibrator fitted on time-ordered folds was tried and dropped: with a few
dozen incidents per fold and a drifting world its slope changes sign from one fold to the next, and the
averaged result ranked the unit-days no better than chance (SF0.1, 120 feed days: backtest ROC-AUC 0.50
with it, 0.68 without, for the same logistic regression). The backtest reports the Brier score and the
expected calibration error of the probabilities as they are.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ml.security_situation import contract

MIN_PER_CLASS = 3  # training needs at least this many unit-days with and without an incident ahead
CANDIDATES = {"hgb": "梯度提升树 (HistGradientBoosting)", "logreg": "正则化逻辑回归"}


def classifier(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if kind == "hgb":
        return HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=150, l2_regularization=1.0,
                                              min_samples_leaf=20, random_state=seed)
    if kind == "logreg":
        # Strong L2 (C=0.03): a training window holds a few dozen incidents for 40-odd features.
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                             FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression(C=0.03, max_iter=2000))
    raise ValueError(f"unknown candidate {kind}; choose from {sorted(CANDIDATES)}")


def _percentile(reference: np.ndarray, values) -> np.ndarray:
    """Share of the (sorted) reference values at or below each value, 0-1."""
    return np.searchsorted(reference, np.asarray(values, dtype=float), side="right") / len(reference)


class SituationModel(ClassifierMixin, BaseEstimator):
    """``predict_proba``: the probability of an incident within 7 days; ``anomaly``: the
    isolation-forest outlyingness of the day as a percentile of the training unit-days (0-1);
    ``score``: the two combined (``contract.W_MODEL`` on the probability's percentile, the rest on the
    anomaly percentile) and put on 0-100 as the percentile of that combination among the training
    unit-days, so a score of 90 means riskier than 90 % of the unit-days the model learnt from, whatever
    the base rate (the level cut-offs of ``contract.LEVELS`` are on this scale)."""

    def __init__(self, kind: str = "hgb", seed: int = 0):
        self.kind = kind
        self.seed = seed

    def fit(self, X, y):
        from sklearn.ensemble import IsolationForest
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline

        X = X[contract.FEATURE_NAMES]
        self.classes_ = np.array([0, 1])
        self.classifier_ = classifier(self.kind, self.seed).fit(X, np.asarray(y, dtype=int))
        A = X[contract.ANOMALY_INPUTS]
        self.forest_ = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                     IsolationForest(n_estimators=200, random_state=self.seed)).fit(A)
        self.anomaly_reference_ = np.sort(-self.forest_.score_samples(A))
        p = self.classifier_.predict_proba(X)[:, 1]
        self.p_reference_ = np.sort(p)
        self.combined_reference_ = np.sort(self._combined(p, self.anomaly(X)))
        return self

    def predict_proba(self, X):
        return self.classifier_.predict_proba(X[contract.FEATURE_NAMES])

    def anomaly(self, X):
        return _percentile(self.anomaly_reference_, -self.forest_.score_samples(X[contract.ANOMALY_INPUTS]))

    def _combined(self, p, a) -> np.ndarray:
        return contract.W_MODEL * _percentile(self.p_reference_, p) + (1 - contract.W_MODEL) * a

    def parts(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, anomaly, score) of each row, each part computed once."""
        p, a = self.predict_proba(X)[:, 1], self.anomaly(X)
        return p, a, np.round(100 * _percentile(self.combined_reference_, self._combined(p, a)), 2)

    def score(self, X, y=None):   # noqa: ARG002 - sklearn's signature; returns the 0-100 score, not accuracy
        return self.parts(X)[2]


# ---- drivers ----------------------------------------------------------------------------------------
# (count column, its norm, Chinese label, unit) compared with the unit's 30-day norm.
_AGAINST_NORM = [
    ("night_alarms_1d", "night_alarms_norm", "夜间报警", "次"),
    ("alarms_1d", "alarms_norm", "报警", "次"),
    ("access_anomalies_1d", "access_anomalies_norm", "门禁异常", "次"),
    ("video_alerts_1d", "video_alerts_norm", "视频行为告警", "次"),
    ("help_calls_1d", "help_calls_norm", "求助/紧急对讲", "次"),
    ("vitals_out_of_range_1d", "vitals_out_of_range_norm", "体征异常读数", "条"),
]
MIN_RATIO = 2.0
MIN_COUNT = 2


def drivers(row) -> list[dict]:
    """The main reasons of one row's score, in Chinese, strongest first (at most three): counts at least
    ``MIN_RATIO`` times the unit's 30-day norm, patrol gaps, fewer devices reporting, serious violations
    and recent incidents."""
    out: list[tuple[float, dict]] = []

    def num(col):
        v = row.get(col)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    for col, norm_col, label, unit in _AGAINST_NORM:
        v, norm = num(col), num(norm_col)
        if v is None or norm is None or v < MIN_COUNT:
            continue
        ratio = (v + 1) / (norm + 1)
        if ratio >= MIN_RATIO:
            out.append((ratio, {"feature": col, "value": v, "norm": round(norm, 2), "ratio": round(ratio, 1),
                                "text": f"{label}{v:.0f}{unit}，为本单元30天日均({norm:.1f})的{ratio:.1f}倍"}))
    miss, miss_norm = num("patrol_miss_rate_1d"), num("patrol_miss_rate_norm")
    if miss is not None and miss >= 0.1 and miss >= 2 * (miss_norm or 0):
        out.append((1 + 10 * miss, {"feature": "patrol_miss_rate_1d", "value": round(miss, 3),
                                    "norm": round(miss_norm or 0, 3),
                                    "text": f"巡更漏检率{miss:.0%}(30天均值{(miss_norm or 0):.0%})"}))
    dev, dev_norm = num("devices_reporting_1d"), num("devices_reporting_norm")
    if dev is not None and dev_norm and dev <= 0.8 * dev_norm:
        out.append((dev_norm / max(dev, 1), {"feature": "devices_reporting_ratio", "value": dev,
                                             "norm": round(dev_norm, 1),
                                             "text": f"报送设备{dev:.0f}台，低于30天均值{dev_norm:.1f}台(设备静默)"}))
    sv = num("serious_violations_3d")
    if sv is not None and sv >= 1:
        out.append((1.5 + sv, {"feature": "serious_violations_3d", "value": sv,
                               "text": f"近3天严重违纪记分{sv:.0f}次"}))
    inc = num("incidents_30d")
    if inc is not None and inc >= 1:
        out.append((1.5 + inc, {"feature": "incidents_30d", "value": inc, "text": f"近30天本单元已发生事件{inc:.0f}起"}))
    out.sort(key=lambda t: -t[0])
    return [d for _, d in out[:3]]


def drivers_text(items: list[dict]) -> str:
    return "；".join(d["text"] for d in items) if items else "各项指标处于本单元常态"
