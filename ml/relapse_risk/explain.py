"""Why a score is what it is: the top contributing factors of each row, in Chinese.

For the logistic regression, a feature's contribution is its coefficient times its standardised
value (for a category: the coefficient of the person's category), summed over the columns the
feature became; for the boosted trees it is its SHAP value (TreeExplainer, log-odds). Only factors
that push the risk *up* are listed, strongest first, as a caseworker reads them: 「渴求程度(VAS)偏高」.
"""

from __future__ import annotations

import numpy as np

from ml.relapse_risk import contract
from ml.relapse_risk.model import base_pipeline

TOP_N = 3


def _column_owner(names: list[str], features: list[str]) -> list[str]:
    """Which original feature each transformed column came from (``num__x``, ``num__missingindicator_x``,
    ``cat__x_value``)."""
    owners = []
    for n in names:
        body = n.split("__", 1)[1]
        body = body.removeprefix("missingindicator_")
        owner = next((f for f in sorted(features, key=len, reverse=True) if body == f or body.startswith(f + "_")),
                     None)
        if owner is None:
            raise ValueError(f"cannot tell which feature the model column {n!r} comes from")
        owners.append(owner)
    return owners


def contributions(model, X):
    """A (rows x features) array of contributions to the log-odds, and the feature names."""
    pipe = base_pipeline(model)
    pre, clf = pipe.named_steps["pre"], pipe.named_steps["clf"]
    Z = pre.transform(X)
    names = list(pre.get_feature_names_out())
    features = [f for f in contract.FEATURE_NAMES if f in X.columns]
    owners = _column_owner(names, features)
    if hasattr(clf, "coef_"):
        per_column = Z * clf.coef_[0]
    else:
        import shap

        per_column = np.asarray(shap.TreeExplainer(clf).shap_values(Z))
        if per_column.ndim == 3:
            per_column = per_column[..., 1]
    out = np.zeros((Z.shape[0], len(features)))
    index = {f: i for i, f in enumerate(features)}
    for j, owner in enumerate(owners):
        out[:, index[owner]] += per_column[:, j]
    return out, features


def _training_medians(model) -> dict[str, float]:
    """The numeric features' training medians (the imputer's), the reference for 偏高 / 偏低."""
    pre = base_pipeline(model).named_steps["pre"]
    for name, transformer, columns in pre.transformers_:
        if name == "num":
            return dict(zip(columns, transformer.named_steps["impute"].statistics_, strict=True))
    return {}


def _text(feature: str, value, median: float | None) -> str:
    label = contract.LABELS_ZH[feature]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"{label}: 无记录"
    if feature in contract.CATEGORICAL:
        return f"{label}: {value}"
    return f"{label}偏低" if median is not None and value < median else f"{label}偏高"


def top_factors(model, X, n: int = TOP_N) -> list[list[dict]]:
    """Per row, up to ``n`` factors raising the risk: feature, label_zh, text, contribution."""
    contrib, features = contributions(model, X)
    medians = _training_medians(model)
    rows = []
    for i in range(contrib.shape[0]):
        factors = []
        for j in np.argsort(-contrib[i])[:n]:
            if contrib[i, j] <= 0:
                break
            f = features[j]
            value = X.iloc[i][f]
            factors.append({"feature": f, "label_zh": contract.LABELS_ZH[f],
                            "text": _text(f, value, medians.get(f)), "contribution": round(float(contrib[i, j]), 4)})
        rows.append(factors)
    return rows
