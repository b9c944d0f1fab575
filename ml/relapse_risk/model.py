"""The candidate models and the risk bands.

Two candidates, both scikit-learn pipelines over the contract's features: a regularised logistic
regression (explainable by coefficient x value) and a histogram gradient-boosted tree model
(explained by SHAP). Each is fitted on the older part of the training releases and calibrated
(Platt, sigmoid) on the newest part of them through ``FrozenEstimator``, so the score reads as a
probability of relapse within 12 months.
"""

from __future__ import annotations

from ml.relapse_risk import contract

# Bands on the calibrated probability. 高 is the operating threshold: the caseworker's list for an
# intensified release plan (domain brief §7: individual plans before release). With about half of
# releasees relapsing within a year, 低 means clearly below the average, 高 clearly above.
BANDS = (("低", 0.0), ("中", 0.40), ("高", 0.65))
OPERATING_THRESHOLD = BANDS[-1][1]


def band(p: float) -> str:
    out = BANDS[0][0]
    for name, lower in BANDS:
        if p >= lower:
            out = name
    return out


def preprocessor(numeric: list[str], categorical: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                                 keep_empty_features=True)),
                                       ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="未知")),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]),
                      categorical))
    return ColumnTransformer(parts, verbose_feature_names_out=True)


def candidate(kind: str, seed: int, features: list[str] | None = None):
    """An unfitted pipeline: ``logreg`` or ``hgb`` over ``features`` (all of the contract's by default)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    features = features or contract.FEATURE_NAMES
    numeric = [f for f in contract.NUMERIC if f in features]
    categorical = [f for f in contract.CATEGORICAL if f in features]
    if kind == "logreg":
        clf = LogisticRegression(C=0.3, max_iter=2000)
    elif kind == "hgb":
        clf = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=150, l2_regularization=1.0,
                                             min_samples_leaf=20, random_state=seed)
    else:
        raise ValueError(f"unknown model kind {kind!r} (logreg or hgb)")
    return Pipeline([("pre", preprocessor(numeric, categorical)), ("clf", clf)])


CANDIDATES = {"logreg": "正则化逻辑回归 (L2, C=0.3)", "hgb": "梯度提升树 (HistGradientBoosting, depth 3)"}


def fit_calibrated(kind: str, X, y, seed: int, calibration_share: float = 0.25, features: list[str] | None = None):
    """Fit on the older releases, calibrate on the newest ``calibration_share`` of them (X is in release
    order). Falls back to calibration by 3-fold cross-validation when the newest slice has one class only."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    cut = int(len(X) * (1 - calibration_share))
    fit_X, fit_y, cal_X, cal_y = X.iloc[:cut], y.iloc[:cut], X.iloc[cut:], y.iloc[cut:]
    if fit_y.nunique() < 2 or cal_y.nunique() < 2:
        return CalibratedClassifierCV(candidate(kind, seed, features), method="sigmoid", cv=3).fit(X, y)
    base = candidate(kind, seed, features).fit(fit_X, fit_y)
    return CalibratedClassifierCV(FrozenEstimator(base), method="sigmoid").fit(cal_X, cal_y)


def base_pipeline(model):
    """The fitted feature pipeline inside a calibrated model (the one explanations read)."""
    inner = model.calibrated_classifiers_[0].estimator
    return getattr(inner, "estimator", inner)
