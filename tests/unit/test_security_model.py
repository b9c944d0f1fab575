"""The security-situation model without Spark: levels and their cut-offs, drivers, the backtest
arithmetic, the purged time split and the estimator on a synthetic unit-day frame."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.security_situation import contract, features, model, train


def test_levels_follow_the_cut_offs_at_their_edges():
    cuts = dict(contract.LEVELS)
    assert contract.level(100) == "红" and contract.level(cuts["红"]) == "红"
    assert contract.level(cuts["红"] - 0.01) == "橙" and contract.level(cuts["橙"]) == "橙"
    assert contract.level(cuts["橙"] - 0.01) == "黄" and contract.level(cuts["黄"]) == "黄"
    assert contract.level(cuts["黄"] - 0.01) == "蓝" and contract.level(0) == "蓝"


def test_gold_gate_on_the_level_uses_the_same_cut_offs():
    """The fail-severity gate of gold.security_situation_score (expectations/gold.yaml) passes every row that
    contract.level makes and stops a row whose level disagrees with its score."""
    import sqlite3

    import yaml

    from smartrehab.settings import REPO_ROOT

    rules = yaml.safe_load((REPO_ROOT / "expectations" / "gold.yaml").read_text(encoding="utf-8"))
    [query] = [r["unexpected_rows_query"] for r in rules["security_situation_score"]
               if r["type"] == "UnexpectedRowsExpectation" and "level = '红'" in r["unexpected_rows_query"]]
    scores = [round(x, 2) for x in np.arange(0, 100.01, 0.01)]
    good = [(v, contract.level(v)) for v in scores] + [(None, "数据不足")]
    with sqlite3.connect(":memory:") as con:
        con.execute("create table t (score real, level text)")
        con.executemany("insert into t values (?, ?)", good)
        assert con.execute(query.replace("{batch}", "t")).fetchall() == []
        cuts = dict(contract.LEVELS)
        bad = [(cuts["红"] - 0.01, "红"), (cuts["橙"], "红"), (cuts["黄"] - 0.01, "黄"), (cuts["黄"], "蓝"), (50.0, None)]
        con.execute("delete from t")
        con.executemany("insert into t values (?, ?)", [(v, lv or "数据不足") for v, lv in bad])
        assert len(con.execute(query.replace("{batch}", "t")).fetchall()) == len(bad)


def _frame(n_units=6, n_days=60, seed=0) -> pd.DataFrame:
    """Unit-days where a hidden tension raises both the alarm counts and the chance of an incident."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        tension = 0.0
        for d in range(n_days):
            tension = 0.8 * tension + rng.normal(0, 1)
            row = {f: float(rng.poisson(2)) for f in contract.FEATURE_NAMES}
            row.update({"centre": "BJ01", "unit": f"D{u + 1:02d}", "score_date": date(2026, 9, 1) + timedelta(days=d),
                        "in_legacy": True, "in_feeds": True, "norm_days": min(d, 30), "hours_with_data": 24})
            row["night_alarms_1d"] = float(rng.poisson(np.exp(0.5 + 0.6 * tension)))
            row["night_alarms_ratio"] = (row["night_alarms_1d"] + 1) / 2.6
            row.update({c: 1.0 for c in contract.NORMS})
            row[contract.LABEL] = int(rng.random() < 1 / (1 + np.exp(-(tension - 1.2))))
            rows.append(row)
    return pd.DataFrame(rows)


def test_purged_split_keeps_no_training_horizon_inside_the_backtest():
    pdf = _frame()
    tr, te = train.split(pdf)
    first_test = te["score_date"].min()
    assert (tr["score_date"] + timedelta(days=contract.HORIZON_DAYS) < first_test).all()
    assert te["score_date"].nunique() == pytest.approx(0.3 * pdf["score_date"].nunique(), abs=1)
    with pytest.raises(train.TrainingError, match="labelled feed days"):
        train.split(pdf[pdf["score_date"] < date(2026, 9, 10)])
    quiet = pdf.assign(**{contract.LABEL: 0})
    with pytest.raises(train.TrainingError, match="0 with an incident ahead"):
        train.split(quiet)
    # Two incident unit-days in training cannot feed three calibration folds.
    tr_days = sorted(tr["score_date"].unique())
    rare = pdf.assign(**{contract.LABEL: 0})
    rare.loc[rare["score_date"].isin(tr_days[:2]) & (rare.index % 7 == 0), contract.LABEL] = 1
    rare.loc[rare["score_date"] >= first_test, contract.LABEL] = pdf[contract.LABEL]
    with pytest.raises(train.TrainingError, match="training days .* need at least 3"):
        train.split(rare)


def test_precision_recall_and_same_budget_baseline():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    flagged = np.array([1, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    got = train.precision_recall(y, flagged)
    assert got == {"flagged": 3, "true_positives": 2, "precision": 2 / 3, "recall": 2 / 3}
    flags = train.same_budget_flags(np.array([0, 5, 3, 9, 1, 0, 0, 2]), 3, seed=0)
    assert flags.tolist() == [False, True, True, True, False, False, False, False]


def test_model_learns_the_signal_and_its_score_combines_both_parts():
    pdf = _frame(n_units=8, n_days=90)
    tr, te = train.split(pdf)
    fitted = model.SituationModel("hgb", seed=0).fit(tr, tr[contract.LABEL])
    from sklearn.metrics import roc_auc_score

    p = fitted.predict_proba(te)[:, 1]
    assert 0.6 < roc_auc_score(te[contract.LABEL], p) < 0.99
    a = fitted.anomaly(te)
    assert ((a >= 0) & (a <= 1)).all()
    s = fitted.score(te)
    assert ((s >= 0) & (s <= 100)).all()
    # The score ranks the weighted percentiles of both parts: the same order as that combination.
    pp = np.searchsorted(fitted.p_reference_, p, side="right") / len(fitted.p_reference_)
    combined = contract.W_MODEL * pp + (1 - contract.W_MODEL) * a
    order = np.argsort(combined, kind="stable")
    assert (np.diff(s[order]) >= 0).all() and s.std() > 0
    # On the training unit-days it is their percentile: the level shares are the documented ones.
    s_tr = fitted.score(tr)
    for name, cut in contract.LEVELS[:-1]:
        assert abs((s_tr >= cut).mean() - (100 - cut) / 100) < 0.03, (name, (s_tr >= cut).mean())
    summary, table, levels = train.backtest(te, fitted, np.full(len(te), te[contract.LABEL].mean()), seed=0)
    assert summary["n"] == len(te) and set(levels["level"]) <= {name for name, _ in contract.LEVELS}
    assert set(table["score"]) == {"model", train.BASELINE, "base rate"}


def test_drivers_name_what_is_far_from_the_units_norm_in_chinese():
    row = {c: 0.0 for c in contract.FEATURE_NAMES + contract.NORMS}
    row.update(night_alarms_1d=6.0, night_alarms_norm=1.0, alarms_1d=7.0, alarms_norm=5.0, patrol_miss_rate_1d=0.25,
               patrol_miss_rate_norm=0.02, devices_reporting_1d=10.0, devices_reporting_norm=10.0)
    got = model.drivers(row)
    texts = [d["text"] for d in got]
    assert texts[0] == "夜间报警6次，为本单元30天日均(1.0)的3.5倍"
    assert any(t.startswith("巡更漏检率25%") for t in texts)
    assert not any(t.startswith("报警7次") for t in texts)    # 8/6 = 1.3 times the norm: not a driver
    assert model.drivers_text(model.drivers({c: 0.0 for c in contract.FEATURE_NAMES + contract.NORMS})) == \
        "各项指标处于本单元常态"


def test_rows_without_enough_input_say_why():
    base = {"in_legacy": True, "in_feeds": True, "norm_days": 20, "hours_with_data": 24}
    cases = [({}, ""), ({"in_legacy": False}, "不在所政管理的大队名录"), ({"hours_with_data": 0}, "无任何设备数据"),
             ({"hours_with_data": 9}, "仅 9/24 小时"), ({"norm_days": 3}, "历史数据仅 3 天")]
    pdf = pd.DataFrame([{**base, **change} for change, _ in cases])
    assert features.scorable(pdf).tolist() == [True, False, False, False, False]
    for (_, expected), row in zip(cases, pdf.to_dict("records"), strict=True):
        reason = features.insufficiency(row)
        assert (expected in reason) if expected else reason == ""
