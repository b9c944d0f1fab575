"""Population stability (PSI) of the features and the score, scoring batch against training.

Training stores a reference: decile edges and shares for each numeric feature and the score,
category shares for each categorical feature. Every scoring run computes PSI = sum((a - e) ln(a / e))
per column against it; above ``ALERT_PSI`` (0.25, the usual "significant shift") the column alerts.
"""

from __future__ import annotations

import numpy as np

from ml.relapse_risk import contract

ALERT_PSI = 0.25
EPS = 1e-4


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return np.clip(counts / total if total else counts, EPS, None)


def reference(frame, scores) -> dict:
    ref: dict[str, dict] = {}
    for f in contract.NUMERIC:
        values = frame[f].dropna().to_numpy(dtype=float)
        if len(values) == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
        ref[f] = _numeric_ref(values, edges, frame[f].isna().mean())
    for f in contract.CATEGORICAL:
        shares = frame[f].astype(str).value_counts(normalize=True)
        ref[f] = {"kind": "categorical", "shares": {k: float(v) for k, v in shares.items()}}
    s = np.asarray(scores, dtype=float)
    ref["score"] = _numeric_ref(s, np.unique(np.quantile(s, np.linspace(0, 1, 11))), 0.0)
    return ref


def _numeric_ref(values: np.ndarray, edges: np.ndarray, missing: float) -> dict:
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
    return {"kind": "numeric", "edges": [float(e) for e in inner], "shares": (counts / max(len(values), 1)).tolist(),
            "missing": float(missing)}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = _shares(np.asarray(expected, dtype=float)), _shares(np.asarray(actual, dtype=float))
    return float(np.sum((a - e) * np.log(a / e)))


def compare(ref: dict, frame, scores) -> list[dict]:
    """One row per column: psi and whether it alerts."""
    out = []
    for col, r in ref.items():
        if col == "score":
            values = np.asarray(scores, dtype=float)
        elif col in frame.columns:
            values = frame[col]
        else:
            continue
        if r["kind"] == "numeric":
            v = np.asarray(values, dtype=float)
            v = v[~np.isnan(v)]
            if len(v) == 0:
                continue
            counts = np.bincount(np.searchsorted(np.asarray(r["edges"]), v, side="right"),
                                 minlength=len(r["edges"]) + 1)
            value = psi(np.asarray(r["shares"]), counts / len(v))
        else:
            shares = values.astype(str).value_counts(normalize=True)
            cats = sorted(set(r["shares"]) | set(shares.index))
            value = psi(np.array([r["shares"].get(c, 0.0) for c in cats]),
                        np.array([float(shares.get(c, 0.0)) for c in cats]))
        out.append({"column": col, "psi": round(value, 6), "alert": value > ALERT_PSI})
    return out
