"""The relapse model's parts on a small synthetic frame (no JVM): bands, calibration, the comparison
table, fairness flags, explanations, drift and the signature check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.common import evaluate, registry
from ml.relapse_risk import contract, drift, explain, fairness, model


def synthetic_frame(n: int = 600, seed: int = 3, signal: float = 1.2) -> pd.DataFrame:
    """Rows in the contract's shape whose label depends on craving and deductions (and nothing else)."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for f in contract.NUMERIC:
        data[f] = rng.normal(10, 3, n)
    data["craving_vas"] = rng.uniform(0, 10, n)
    data["deductions_90d"] = rng.poisson(2, n).astype(float)
    for f in contract.CATEGORICAL:
        data[f] = rng.choice(["甲", "乙"], n)
    logit = signal * ((data["craving_vas"] - 5) / 2.9 + (data["deductions_90d"] - 2) / 1.4) + rng.normal(0, 1, n)
    frame = pd.DataFrame(data)
    frame[contract.LABEL] = (logit > 0).astype(int)
    frame["sex"] = rng.choice(["1", "2"], n, p=[0.8, 0.2])
    frame["ethnic_group"] = rng.choice(["汉族", "少数民族"], n, p=[0.9, 0.1])
    frame["age_band"] = rng.choice(list(contract.AGE_BANDS), n)
    frame["centre"] = rng.choice(["BJ01", "BJ02", "BJ03"], n)
    return frame


@pytest.fixture(scope="module")
def fitted():
    frame = synthetic_frame()
    train, test = frame.iloc[:450], frame.iloc[450:]
    m = model.fit_calibrated("logreg", train[contract.FEATURE_NAMES], train[contract.LABEL], seed=1)
    return m, train, test


def test_bands_follow_the_documented_cut_offs():
    assert [model.band(p) for p in (0.0, 0.399, 0.40, 0.649, 0.65, 1.0)] == ["低", "低", "中", "中", "高", "高"]
    assert model.OPERATING_THRESHOLD == 0.65


def test_both_candidates_learn_the_signal_and_are_calibrated(fitted):
    _, train, test = fitted
    for kind in model.CANDIDATES:
        m = model.fit_calibrated(kind, train[contract.FEATURE_NAMES], train[contract.LABEL], seed=1)
        p = m.predict_proba(test[contract.FEATURE_NAMES])[:, 1]
        got = evaluate.metrics(test[contract.LABEL], p)
        assert got.roc_auc > 0.80, kind
        assert got.ece < 0.12, kind
        assert got.brier < 0.20, kind


def test_comparison_says_whether_the_model_beats_a_baseline(fitted):
    m, _, test = fitted
    y = test[contract.LABEL]
    p = m.predict_proba(test[contract.FEATURE_NAMES])[:, 1]
    noise = np.random.default_rng(0).uniform(0, 1, len(y))
    table = evaluate.comparison(y, {"model": p, "noise": noise, "the model again": p}, "model", seed=0)
    noise_row = table.set_index("score").loc["noise"]
    assert noise_row["auc_gain_low"] > 0 and noise_row["verdict"] == "模型显著优于此基线"
    same = table.set_index("score").loc["the model again"]
    assert same["auc_gain_of_model"] == 0 and same["verdict"] == "模型未显著优于此基线"


def test_calibration_table_and_ece_see_a_miscalibrated_score():
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < p).astype(int)
    assert evaluate.expected_calibration_error(y, p) < 0.05
    assert evaluate.expected_calibration_error(y, np.clip(p + 0.3, 0, 1)) > 0.2
    table = evaluate.calibration_table(y, p)
    assert len(table) == 10 and table["n"].sum() == 2000
    assert table["observed"].is_monotonic_increasing or table["observed"].iloc[-1] > table["observed"].iloc[0]


def test_one_class_holdout_is_refused():
    with pytest.raises(ValueError, match="one class only"):
        evaluate.metrics([1, 1, 1], [0.2, 0.5, 0.9])


def test_fairness_flags_a_group_whose_scores_are_shifted(fitted):
    m, _, test = fitted
    test = test.copy()
    p = m.predict_proba(test[contract.FEATURE_NAMES])[:, 1]
    fair = fairness.report(test, p)
    assert set(fair["group"]) == set(contract.GROUPS)
    assert {"roc_auc", "calibration_gap", "selection_rate", "false_positive_rate"} == set(fair["metric"])
    # Make centre BJ02's scores 0.3 too high: its calibration gap and selection rate must be flagged.
    shifted = np.where(test["centre"] == "BJ02", np.clip(p + 0.3, 0, 1), p)
    flagged = fairness.report(test, shifted)
    bj02 = flagged[(flagged["group"] == "centre") & (flagged["value"] == "BJ02")].set_index("metric")
    assert bj02.loc["calibration_gap", "flagged"] and bj02.loc["selection_rate", "flagged"]
    # Small groups are reported but not judged.
    small = flagged[flagged["n"] < fairness.MIN_GROUP]
    assert not small["flagged"].any() and (small["note"] == "样本不足").all()


def test_explanations_name_the_features_that_carry_the_risk(fitted):
    m, _, test = fitted
    X = test[contract.FEATURE_NAMES]
    rows = explain.top_factors(m, X)
    assert len(rows) == len(X)
    assert all(len(r) <= explain.TOP_N for r in rows)
    assert all(f["contribution"] > 0 for r in rows for f in r)
    named = pd.Series([f["feature"] for r in rows for f in r]).value_counts()
    assert set(named.index[:2]) == {"craving_vas", "deductions_90d"}
    high = X["craving_vas"].idxmax()
    texts = [f["text"] for f in rows[list(X.index).index(high)]]
    assert "渴求程度(VAS)偏高" in texts


def test_explanations_for_the_tree_model_use_shap(fitted):
    _, train, test = fitted
    m = model.fit_calibrated("hgb", train[contract.FEATURE_NAMES], train[contract.LABEL], seed=1)
    contrib, features = explain.contributions(m, test[contract.FEATURE_NAMES])
    assert contrib.shape == (len(test), len(contract.FEATURE_NAMES))
    strongest = pd.Series(np.abs(contrib).mean(axis=0), index=features).nlargest(2)
    assert set(strongest.index) == {"craving_vas", "deductions_90d"}


def test_missing_value_reads_as_no_record(fitted):
    m, _, test = fitted
    X = test[contract.FEATURE_NAMES].head(1).copy()
    X["craving_vas"] = np.nan
    assert explain._text("craving_vas", X.iloc[0]["craving_vas"], 5.0) == "渴求程度(VAS): 无记录"
    assert explain._text("main_drug_class", None, None) == "主要滥用毒品类别: 无记录"


def test_psi_alerts_on_a_shifted_batch_and_not_on_the_same_population(fitted):
    m, train, test = fitted
    ref = drift.reference(train[contract.FEATURE_NAMES], m.predict_proba(train[contract.FEATURE_NAMES])[:, 1])
    same = synthetic_frame(n=600, seed=11)
    checks = {c["column"]: c for c in drift.compare(ref, same, m.predict_proba(same[contract.FEATURE_NAMES])[:, 1])}
    assert not any(c["alert"] for c in checks.values()), [c for c in checks.values() if c["alert"]]
    moved = same.copy()
    moved["craving_vas"] = moved["craving_vas"] + 4
    checks = {c["column"]: c for c in drift.compare(ref, moved, m.predict_proba(moved[contract.FEATURE_NAMES])[:, 1])}
    assert checks["craving_vas"]["alert"] and checks["craving_vas"]["psi"] > drift.ALERT_PSI
    assert checks["score"]["alert"]
    assert not checks["age_at_admission"]["alert"]


def test_signature_check_refuses_other_columns():
    from mlflow.models import infer_signature

    X = synthetic_frame(n=20)[contract.FEATURE_NAMES]
    registry.check_signature(contract.MODEL, infer_signature(X, np.zeros(len(X))), contract.FEATURE_NAMES)
    old = infer_signature(X.drop(columns=["craving_vas"]), np.zeros(len(X)))
    with pytest.raises(registry.SignatureMismatch, match="missing .*craving_vas|unexpected .*craving_vas"):
        registry.check_signature(contract.MODEL, old, contract.FEATURE_NAMES)
    with pytest.raises(registry.SignatureMismatch, match="no input signature"):
        registry.check_signature(contract.MODEL, None, contract.FEATURE_NAMES)


def test_contract_columns_are_unique_and_features_documented():
    assert len(contract.COLUMNS) == len(set(contract.COLUMNS))
    assert all(f.label_zh and f.source for f in contract.FEATURES)
    assert set(contract.DEMOGRAPHIC) < set(contract.FEATURE_NAMES)
    assert set(contract.ASSESSMENT_BASELINE) < set(contract.FEATURE_NAMES)
