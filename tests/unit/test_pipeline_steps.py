"""Pipeline steps return what Airflow can keep in XCom (JSON)."""

from __future__ import annotations

import json

import numpy as np

from smartrehab import pipeline
from smartrehab.settings import get_settings


def test_a_step_result_with_nan_and_numpy_numbers_is_json_safe():
    @pipeline.spark_step
    def step(s):
        return {"auc": np.float64(0.5), "lift": float("nan"), "counts": {"红": np.int64(3)},
                "bounds": (float("inf"), 1), "reason": "ok"}

    out = step(get_settings())
    assert out == {"auc": 0.5, "lift": None, "counts": {"红": 3}, "bounds": [None, 1], "reason": "ok"}
    assert json.loads(json.dumps(out, allow_nan=False)) == out
