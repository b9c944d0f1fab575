"""Weekly training of the security-situation model, with its backtest, tracked in MLflow.

Rows: every unit-day with enough input (``features.scorable``) whose 7-day horizon is known. Split in
time: the latest ``TEST_SHARE`` of the days are the backtest; training rows whose horizon reaches into
the backtest days are dropped (purged), so no training label has seen a backtest incident. Two
candidates (gradient boosting, logistic regression) are compared on the last quarter of the training
days and the better one is refit on all training days. The backtest then measures, on the later days:
ROC-AUC, PR-AUC and Brier against the duty officer's baseline (yesterday's alarm count, as a logistic
fit on the training days) and the base rate; and the precision and recall of the 红/橙 levels against
the incidents that followed, with the baseline flagging the same number of unit-days (the most alarms).
The version is registered and the champion / challenger rule applied (``ml/common/registry.py``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml.common import evaluate, registry
from ml.security_situation import contract, features, model

TEST_SHARE = 0.3
ALERT_LEVELS = ("红", "橙")
BASELINE = "昨日报警次数 (值班民警现行做法)"


class TrainingError(ValueError):
    """Not enough history or incidents to train or to backtest: says what is missing."""


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_version: str
    alias: str
    reason: str
    kind: str
    roc_auc: float
    baseline_auc: float
    n_train: int
    n_test: int
    backtest: dict


def split(pdf: pd.DataFrame):
    """(train, test): the latest TEST_SHARE of the labelled days are the test; training rows whose
    horizon reaches the first test day are purged."""
    days = np.sort(pdf["score_date"].unique())
    if len(days) < 2 * contract.HORIZON_DAYS:
        raise TrainingError(f"only {len(days)} labelled feed days: at least {2 * contract.HORIZON_DAYS} are needed "
                            "(simulate and ingest a longer feed history)")
    first_test = days[int(len(days) * (1 - TEST_SHARE))]
    test = pdf[pdf["score_date"] >= first_test]
    train = pdf[pdf["score_date"] + timedelta(days=contract.HORIZON_DAYS) < first_test]
    for name, part, need in (("training", train, model.MIN_PER_CLASS), ("backtest", test, 1)):
        if min_class(part) < need:
            raise TrainingError(f"the {name} days ({part['score_date'].min()} .. {part['score_date'].max()}, "
                                f"{len(part)} unit-days, {int(part[contract.LABEL].sum())} with an incident ahead) "
                                f"need at least {need} unit-days with and {need} without an incident ahead: "
                                "cannot train or measure; a longer feed history is needed")
    return train, test


def min_class(part: pd.DataFrame) -> int:
    """Unit-days of the rarer class (with or without an incident in the horizon)."""
    y = part[contract.LABEL]
    return int(min((y == 1).sum(), (y == 0).sum()))


def alert_flags(levels) -> np.ndarray:
    return np.isin(np.asarray(levels), ALERT_LEVELS)


def precision_recall(y, flagged) -> dict:
    y, flagged = np.asarray(y, dtype=int), np.asarray(flagged, dtype=bool)
    tp = int((y[flagged] == 1).sum())
    return {"flagged": int(flagged.sum()), "true_positives": tp,
            "precision": tp / flagged.sum() if flagged.sum() else float("nan"),
            "recall": tp / y.sum() if y.sum() else float("nan")}


def same_budget_flags(values, k: int, seed: int) -> np.ndarray:
    """The k rows with the highest values (ties broken at random, reproducibly)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(values)), -np.asarray(values, dtype=float)))
    flags = np.zeros(len(values), dtype=bool)
    flags[order[:k]] = True
    return flags


def backtest(test: pd.DataFrame, fitted, baseline_p, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(summary, comparison table, level table) on the backtest days."""
    y = test[contract.LABEL].astype(int).to_numpy()
    p, _, scores = fitted.parts(test)
    levels = [contract.level(v) for v in scores]
    flags = alert_flags(levels)
    mine = precision_recall(y, flags)
    base = precision_recall(y, same_budget_flags(test["alarms_1d"].fillna(0), mine["flagged"], seed))
    rate = float(y.mean())
    table = evaluate.comparison(y, {"model": p, BASELINE: baseline_p, "base rate": np.full(len(y), rate)}, "model",
                                seed=seed)
    per_level = (pd.DataFrame({"level": levels, "y": y}).groupby("level")
                 .agg(unit_days=("y", "size"), incident_rate=("y", "mean")).reset_index())
    summary = {"n": len(y), "incident_rate": rate, "red_orange_flagged": mine["flagged"],
               "red_orange_precision": mine["precision"], "red_orange_recall": mine["recall"],
               "red_orange_lift_over_base_rate": mine["precision"] / rate if rate else float("nan"),
               "baseline_precision": base["precision"], "baseline_recall": base["recall"],
               "lift_over_baseline": (mine["precision"] / base["precision"]
                                      if base["precision"] and not np.isnan(base["precision"]) else float("nan")),
               "first_day": str(test["score_date"].min()), "last_day": str(test["score_date"].max())}
    return summary, table, per_level


def train(spark, s, log=print) -> TrainResult:
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    until = features.incidents_known_until(spark)
    pdf = features.to_pandas(features.build(spark), until)
    pdf = pdf[features.scorable(pdf) & pdf[contract.LABEL].notna()].copy()
    pdf[contract.LABEL] = pdf[contract.LABEL].astype(int)
    train_df, test_df = split(pdf)
    y_tr = train_df[contract.LABEL].to_numpy()

    # Candidate choice on the last quarter of the training days (purged like the backtest).
    sel_train, sel_test = _selection_split(train_df)
    selection = {}
    for kind in model.CANDIDATES:
        if min_class(sel_test) < 1 or min_class(sel_train) < model.MIN_PER_CLASS:
            selection[kind] = float("nan")  # too few incident days to choose: the first candidate is taken
            continue
        m = model.SituationModel(kind, s.seed).fit(sel_train, sel_train[contract.LABEL])
        selection[kind] = evaluate.metrics(sel_test[contract.LABEL], m.predict_proba(sel_test)[:, 1]).roc_auc
    kind = max(selection, key=lambda k: -1 if np.isnan(selection[k]) else selection[k])
    chosen = model.SituationModel(kind, s.seed).fit(train_df, y_tr)
    base = LogisticRegression().fit(np.log1p(train_df[["alarms_1d"]].fillna(0)), y_tr)
    baseline_p = base.predict_proba(np.log1p(test_df[["alarms_1d"]].fillna(0)))[:, 1]
    summary, table, per_level = backtest(test_df, chosen, baseline_p, s.seed)
    m = evaluate.metrics(test_df[contract.LABEL], chosen.predict_proba(test_df)[:, 1])
    baseline_auc = float(table.loc[table["score"] == BASELINE, "roc_auc"].iloc[0])

    mlflow = registry.mlflow_for(s, contract.MODEL)
    client = MlflowClient(tracking_uri=s.tracking_uri)
    with mlflow.start_run(run_name=f"security_situation_{kind}") as run:
        mlflow.log_params({"model": kind, "model_zh": model.CANDIDATES[kind], "calibration": "none (logistic loss; Brier and ECE in the backtest)",
                           "anomaly": "IsolationForest on the day against the unit's 30-day norm",
                           "label": f"incident (AQ_SJDJ) in the unit within {contract.HORIZON_DAYS} days",
                           "split": "time: latest days held out, training purged of horizons reaching them",
                           "test_share": TEST_SHARE, "features": len(contract.FEATURE_NAMES),
                           "score": f"100 * ({contract.W_MODEL} p + {1 - contract.W_MODEL:.2f} anomaly)",
                           "levels": json.dumps(contract.LEVELS, ensure_ascii=False),
                           "train_days": f"{train_df['score_date'].min()} .. {train_df['score_date'].max()}",
                           "test_days": f"{summary['first_day']} .. {summary['last_day']}"})
        mlflow.log_metrics({**m.as_dict("test_"), "n_train": len(train_df), "incident_rate_train": float(y_tr.mean()),
                            "baseline_roc_auc": baseline_auc,
                            **{f"selection_auc_{k}": v for k, v in selection.items() if not np.isnan(v)},
                            **{f"backtest_{k}": float(v) for k, v in summary.items()
                               if isinstance(v, (int, float)) and not np.isnan(v)}})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            table.to_csv(out / "comparison.csv", index=False)
            per_level.to_csv(out / "levels.csv", index=False)
            (out / "backtest.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
            mlflow.log_artifacts(str(out), artifact_path="report")
        X = train_df[contract.FEATURE_NAMES]
        info = mlflow.sklearn.log_model(chosen, name="model", registered_model_name=contract.MODEL.name,
                                        signature=infer_signature(X, chosen.predict_proba(X)[:, 1]),
                                        input_example=X.head(3), serialization_format="skops",
                                        skops_trusted_types=registry.own_types(chosen))
        version = str(info.registered_model_version)
        decision = registry.decide(client, contract.MODEL, m.roc_auc, m.brier, test_df, test_df[contract.LABEL],
                                   contract.FEATURE_NAMES)
        registry.apply(client, contract.MODEL, version, decision)
        mlflow.set_tags({"alias": decision.alias, "alias_reason": decision.reason[:4900]})
    log(f"security model: {kind} version {version} → {decision.alias} ({decision.reason}); backtest AUC "
        f"{m.roc_auc:.3f} vs yesterday's alarms {baseline_auc:.3f}; 红/橙 precision "
        f"{summary['red_orange_precision']:.2f} recall {summary['red_orange_recall']:.2f} "
        f"({summary['red_orange_flagged']} of {summary['n']} unit-days; run {run.info.run_id})")
    return TrainResult(run.info.run_id, version, decision.alias, decision.reason, kind, m.roc_auc, baseline_auc,
                       len(train_df), len(test_df), summary)


def _selection_split(train_df: pd.DataFrame):
    days = np.sort(train_df["score_date"].unique())
    first = days[int(len(days) * 0.75)]
    return (train_df[train_df["score_date"] + timedelta(days=contract.HORIZON_DAYS) < first],
            train_df[train_df["score_date"] >= first])
