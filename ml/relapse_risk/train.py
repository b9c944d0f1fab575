"""Weekly training: features → time split → candidates → calibration → evaluation → MLflow → alias rule.

Training rows are the occasions of released admissions with a known 12-month outcome: the day before
release and each comprehensive assessment during the stay (the two moments the score is used).
Time-based validation: admissions are ordered by release day; the newest ``TEST_SHARE`` of them (all
their occasions) form the holdout (the newest release cohort), the rest train. Within training, each
candidate is fitted on the older releases and calibrated on the newest quarter of them; the candidate
with the better ROC-AUC on that calibration slice is the one registered (the holdout plays no part
in the choice). The holdout's pre-release rows then measure it against the baselines and the current
champion; its assessment rows are reported beside them.

The drift reference is the population in a centre on the data's last day, scored by the new model:
each daily scoring run compares the people in a centre then with them.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml.common import evaluate, registry
from ml.relapse_risk import contract, drift, explain, fairness, features, model

TEST_SHARE = 0.25
MIN_LABELLED = 40


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_version: str
    alias: str
    reason: str
    kind: str
    auc: float
    brier: float
    n_train: int
    n_test: int


def labelled_frame(spark, s):
    """Occasions of releases with a known 12-month outcome, in release order (pandas)."""
    frame = features.build(spark, features.training_occasions(spark)).toPandas()
    frame = frame[frame[contract.LABEL].notna()].sort_values(
        ["released_on", "admission_id", "as_of_date"]).reset_index(drop=True)
    frame[contract.LABEL] = frame[contract.LABEL].astype(int)
    pre = frame[frame["occasion"] == "pre_release"]
    if len(pre) < MIN_LABELLED or pre[contract.LABEL].nunique() < 2:
        raise features.FeatureError(
            f"too few releases with a known 12-month outcome to train on ({len(pre)}, outcomes "
            f"{pre[contract.LABEL].value_counts().to_dict()}; need {MIN_LABELLED} and both outcomes): "
            "load more history (a larger scale factor)")
    features.check_frame(frame, "train")
    return frame


def split(frame):
    """Older releases train, the newest ``TEST_SHARE`` of releases test; an admission's occasions stay together."""
    admissions = frame.drop_duplicates("admission_id")["admission_id"].tolist()
    held = set(admissions[int(len(admissions) * (1 - TEST_SHARE)):])
    is_test = frame["admission_id"].isin(held)
    train, test = frame[~is_test], frame[is_test]
    pre_test = test[test["occasion"] == "pre_release"]
    if pre_test[contract.LABEL].nunique() < 2 or train[contract.LABEL].nunique() < 2:
        raise features.FeatureError("the time split leaves one outcome only in training or holdout: more history needed")
    return train.reset_index(drop=True), test.reset_index(drop=True)


def current_population(spark):
    """The people in a centre on the data's last day (the drift reference's population)."""
    as_of = features.data_as_of(spark)
    frame = features.build(spark, features.scoring_occasions(spark, as_of)).toPandas()
    return frame[frame["occasion"] == "current"]


def _auc_on_calibration_slice(kind, train, seed):
    cut = int(len(train) * 0.75)
    X, y = train[contract.FEATURE_NAMES], train[contract.LABEL]
    m = model.candidate(kind, seed).fit(X.iloc[:cut], y.iloc[:cut])
    yv = y.iloc[cut:]
    if yv.nunique() < 2:
        return float("nan")
    return evaluate.metrics(yv, m.predict_proba(X.iloc[cut:])[:, 1]).roc_auc


def train(spark, s, log=print) -> TrainResult:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    frame = labelled_frame(spark, s)
    train_df, holdout = split(frame)
    test_df = holdout[holdout["occasion"] == "pre_release"].reset_index(drop=True)
    at_assessment = holdout[holdout["occasion"] == "assessment"]
    X_tr, y_tr = train_df[contract.FEATURE_NAMES], train_df[contract.LABEL]
    X_te, y_te = test_df[contract.FEATURE_NAMES], test_df[contract.LABEL]

    selection = {k: _auc_on_calibration_slice(k, train_df, s.seed) for k in model.CANDIDATES}
    kind = max(selection, key=lambda k: -1 if pd.isna(selection[k]) else selection[k])
    fitted = {k: model.fit_calibrated(k, X_tr, y_tr, s.seed) for k in model.CANDIDATES}
    chosen = fitted[kind]
    p_model = chosen.predict_proba(X_te)[:, 1]

    # Baselines the bureau has today, on the same holdout.
    demo = model.fit_calibrated("logreg", train_df[contract.DEMOGRAPHIC], y_tr, s.seed, features=contract.DEMOGRAPHIC)
    assess = model.fit_calibrated("logreg", train_df[contract.ASSESSMENT_BASELINE], y_tr, s.seed,
                                  features=contract.ASSESSMENT_BASELINE)
    scores = {f"model ({kind})": p_model,
              **{f"candidate {k}": fitted[k].predict_proba(X_te)[:, 1] for k in model.CANDIDATES if k != kind},
              "pre-release assessment only": assess.predict_proba(test_df[contract.ASSESSMENT_BASELINE])[:, 1],
              "demographics only": demo.predict_proba(test_df[contract.DEMOGRAPHIC])[:, 1],
              "base rate": [float(y_tr.mean())] * len(y_te)}
    table = evaluate.comparison(y_te, scores, f"model ({kind})", seed=s.seed)
    m = evaluate.metrics(y_te, p_model)
    calib = evaluate.calibration_table(y_te, p_model)
    fair = fairness.report(test_df, p_model)
    factors = explain.top_factors(chosen, X_te.head(20))
    m_assessment = (evaluate.metrics(at_assessment[contract.LABEL], chosen.predict_proba(
        at_assessment[contract.FEATURE_NAMES])[:, 1]) if at_assessment[contract.LABEL].nunique() == 2 else None)
    population = current_population(spark)
    reference_frame = population if len(population) else X_tr
    ref = drift.reference(reference_frame[contract.FEATURE_NAMES],
                          chosen.predict_proba(reference_frame[contract.FEATURE_NAMES])[:, 1])

    mlflow = registry.mlflow_for(s, contract.MODEL)
    client = MlflowClient(tracking_uri=s.tracking_uri)
    with mlflow.start_run(run_name=f"relapse_risk_{kind}") as run:
        mlflow.log_params({"model": kind, "model_zh": model.CANDIDATES[kind], "calibration": "sigmoid (Platt)",
                           "label": "relapse (复吸) within 12 months of release", "split": "time: newest releases held out",
                           "test_share": TEST_SHARE, "features": len(contract.FEATURE_NAMES),
                           "training_occasions": "pre_release + comprehensive assessments of released admissions",
                           "drift_reference": "in a centre on the data's last day" if len(population) else "training rows",
                           "bands": json.dumps(model.BANDS, ensure_ascii=False),
                           "train_released_until": str(train_df["released_on"].max()),
                           "test_released_from": str(test_df["released_on"].min())})
        if m_assessment is not None:
            mlflow.log_metrics(m_assessment.as_dict("test_assessment_"))
        mlflow.log_metrics({**m.as_dict("test_"), "n_train": len(train_df), "relapse_rate_train": float(y_tr.mean()),
                            "n_train_releases": int((train_df["occasion"] == "pre_release").sum()),
                            **{f"selection_auc_{k}": v for k, v in selection.items() if not pd.isna(v)},
                            "fairness_flags": int(fair["flagged"].sum())})
        for _, r in table.iterrows():
            if r["score"] != f"model ({kind})" and not pd.isna(r.get("auc_gain_of_model")):
                key = r["score"].replace(" ", "_").replace("(", "").replace(")", "").replace("-", "_")
                mlflow.log_metrics({f"auc_gain_vs_{key}": r["auc_gain_of_model"],
                                    f"auc_gain_low_vs_{key}": r["auc_gain_low"]})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            table.to_csv(out / "comparison.csv", index=False)
            calib.to_csv(out / "calibration.csv", index=False)
            fair.to_csv(out / "fairness.csv", index=False)
            (out / "drift_reference.json").write_text(json.dumps(ref, ensure_ascii=False), encoding="utf-8")
            (out / "example_factors.json").write_text(json.dumps(factors, ensure_ascii=False, indent=1),
                                                      encoding="utf-8")
            _calibration_plot(calib, out / "calibration.png")
            mlflow.log_artifacts(str(out), artifact_path="report")
        mlflow.set_tag("fairness_flagged", ", ".join(sorted(
            {f"{r.group}={r.value}:{r.metric}" for r in fair[fair["flagged"]].itertuples()})) or "none")
        info = mlflow.sklearn.log_model(chosen, name="model", registered_model_name=contract.MODEL.name,
                                        signature=infer_signature(X_tr, chosen.predict_proba(X_tr)[:, 1]),
                                        input_example=X_tr.head(3), serialization_format="skops",
                                        skops_trusted_types=registry.own_types(chosen))
        version = str(info.registered_model_version)
        decision = registry.decide(client, contract.MODEL, m.roc_auc, m.brier, test_df, y_te, contract.FEATURE_NAMES)
        registry.apply(client, contract.MODEL, version, decision)
        mlflow.set_tags({"alias": decision.alias, "alias_reason": decision.reason[:4900]})
    log(f"relapse model: {kind} version {version} → {decision.alias} ({decision.reason}); holdout AUC "
        f"{m.roc_auc:.3f}, Brier {m.brier:.3f} on {m.n} releases (run {run.info.run_id})")
    return TrainResult(run.info.run_id, version, decision.alias, decision.reason, kind, m.roc_auc, m.brier,
                       len(train_df), len(test_df))


def _calibration_plot(calib, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.plot(calib["predicted"], calib["observed"], marker="o")
    ax.set_xlabel("predicted relapse probability")
    ax.set_ylabel("observed relapse rate (holdout)")
    ax.set_title("Calibration, newest releases")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
