"""Metrics on a holdout (the newest cohort or the latest days): discrimination, calibration, baselines.

Shared by the models: each compares itself with the baselines its users have today (for relapse risk
the pre-release assessment result alone, demographics alone and the base rate; for the security
situation yesterday's alarm count). The comparison says how much the model beats each, with a paired
bootstrap interval of the ROC-AUC difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    ece: float            # expected calibration error over 10 quantile bins
    n: int
    prevalence: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in self.__dict__.items()}


def metrics(y, p) -> Metrics:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y, p = np.asarray(y, dtype=int), np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    if len(np.unique(y)) < 2:
        raise ValueError(f"the holdout has one class only ({len(y)} rows): cannot measure discrimination; "
                         "more history is needed (a larger scale factor or a later as-of day)")
    return Metrics(roc_auc_score(y, p), average_precision_score(y, p), brier_score_loss(y, p),
                   log_loss(y, p), expected_calibration_error(y, p), len(y), float(y.mean()))


def calibration_table(y, p, bins: int = 10):
    """Per quantile bin: mean predicted probability, observed rate, count."""
    import pandas as pd

    frame = pd.DataFrame({"y": np.asarray(y, dtype=int), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    out = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")).reset_index()
    return out


def expected_calibration_error(y, p, bins: int = 10) -> float:
    t = calibration_table(y, p, bins)
    return float((t["n"] * (t["predicted"] - t["observed"]).abs()).sum() / t["n"].sum())


def bootstrap_auc_difference(y, p_model, p_other, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Paired bootstrap of ROC-AUC(model) - ROC-AUC(other) on the same holdout: (difference, 2.5 %, 97.5 %)."""
    from sklearn.metrics import roc_auc_score

    y, a, b = np.asarray(y, dtype=int), np.asarray(p_model), np.asarray(p_other)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    point = roc_auc_score(y, a) - roc_auc_score(y, b)
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
    return float(point), float(lo), float(hi)


def comparison(y, scores: dict[str, np.ndarray], model_key: str, seed: int = 0):
    """One table: each score's metrics and, against the model, the AUC difference with its 95 % interval
    and a plain verdict."""
    import pandas as pd

    rows = []
    for name, p in scores.items():
        m = metrics(y, p).as_dict()
        if name != model_key:
            d, lo, hi = bootstrap_auc_difference(y, scores[model_key], p, seed=seed)
            m.update(auc_gain_of_model=d, auc_gain_low=lo, auc_gain_high=hi,
                     verdict=("模型显著优于此基线" if lo > 0 else "模型未显著优于此基线"))
        rows.append({"score": name, **m})
    return pd.DataFrame(rows)
