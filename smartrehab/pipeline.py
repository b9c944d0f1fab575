"""The pipeline's steps, one function each, shared by the Airflow DAGs and the CLI.

Each step takes the settings, gets the process's Spark session, and returns a small summary
(what an Airflow XCom or a progress line can carry).
"""

from __future__ import annotations

import functools
from datetime import date

from smartrehab.settings import Settings
from smartrehab.spark import explain_out_of_memory, get_spark


def spark_step(fn):
    """A pipeline step that uses Spark: an out-of-memory failure is re-raised naming the setting to change;
    the result is made JSON-safe, since the DAG tasks return it to XCom."""
    @functools.wraps(fn)
    def run(s: Settings, *args, **kwargs):
        try:
            return _json_safe(fn(s, *args, **kwargs))
        except Exception as e:
            hint = explain_out_of_memory(e, s)
            if hint is None:
                raise
            raise RuntimeError(f"{fn.__name__}: {hint}") from e
    return run


@spark_step
def ingest_legacy(s: Settings, days: list[date] | None = None, log=print) -> dict:
    from spark_jobs.legacy import ingest

    report = ingest.run(get_spark("legacy-ingest", s), s, days=days, log=log)
    counts: dict[str, int] = {}
    for f in report.files:
        counts[f.status] = counts.get(f.status, 0) + 1
    return {"load_id": report.load_id, "files": counts, "balanced": report.balanced,
            "source_rows": sum(f.source_rows for f in report.files),
            "quarantined_rows": sum(f.quarantined_rows for f in report.files)}


def pending_days(s: Settings) -> list[date]:
    """Delivery days with at least one file not loaded yet (by content checksum)."""
    from smartrehab.checksum import file_sha256
    from spark_jobs.legacy import ingest

    done = ingest.loaded_shas(get_spark("legacy-ingest", s))
    out = []
    for day in ingest.delivery_days(s):
        folder = s.landing_dir / "legacy" / f"{day:%Y%m%d}"
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_"))]
        if any(file_sha256(p) not in done for p in files):
            out.append(day)
    return out


@spark_step
def quality_gate(s: Settings, layer: str, log=print) -> dict:
    from smartrehab.quality import run_gate

    res = run_gate(get_spark("quality-gate", s), s, layer, log=log)
    return {"layer": layer, "run_id": res.run_id, "checked": len(res.rows), "failed": len(res.failures),
            "warnings": len(res.warnings)}


def _dbt(s: Settings, command: str, extra: list[str], target: str = "target") -> object:
    from dbt.cli.main import dbtRunner

    get_spark("dbt", s)
    args = [*command.split(), "--project-dir", str(s.dbt_dir), "--profiles-dir", str(s.dbt_dir),
            "--target-path", str(s.var_dir / "dbt" / target), "--log-path", str(s.var_dir / "dbt" / "logs"), *extra]
    return dbtRunner().invoke(args)


@spark_step
def dbt_build(s: Settings, select: str | None = None, log=print, dbt_vars: dict | None = None,
              target: str = "target") -> dict:
    """``dbt build`` in this process (its Spark session is this process's session).

    A failed model or data test (severity error) fails the build, and dbt skips what depends on it;
    this raises so that the caller (an Airflow task) fails and nothing downstream publishes.
    ``dbt_vars`` (e.g. ``silver_schema`` / ``schema_prefix``) build the project over other data.
    """
    import json

    # A selection builds the tests whose every parent is selected (not those that also read other models).
    extra = ["--select", select, "--indirect-selection", "cautious"] if select else []
    if dbt_vars:
        extra += ["--vars", json.dumps(dbt_vars)]
    res = _dbt(s, "build", extra, target)
    if not res.success:
        failed = [f"{r.node.unique_id}: {r.status} {r.message or ''}".strip()
                  for r in (res.result or []) if str(r.status) in ("error", "fail")]
        raise RuntimeError("dbt build failed: " + ("; ".join(failed[:20]) if failed else
                                                   str(res.exception or "see var/dbt/logs/dbt.log")))
    n = len(res.result) if res.result is not None else 0
    log(f"dbt build: {n} nodes passed")
    return {"nodes": n}


def dbt_docs(s: Settings, log=print) -> dict:
    """``dbt docs generate``: index.html, catalog.json and manifest.json under var/dbt/docs."""
    res = _dbt(s, "docs generate", [], "docs")
    if not res.success:
        raise RuntimeError(f"dbt docs generate failed: {res.exception or 'see var/dbt/logs/dbt.log'}")
    out = s.var_dir / "dbt" / "docs"
    log(f"dbt docs: {out / 'index.html'}")
    return {"docs_dir": str(out)}


@spark_step
def train_relapse_model(s: Settings, log=print) -> dict:
    """Weekly: features, candidates, calibration, evaluation, MLflow run and the champion rule."""
    from ml.relapse_risk import train

    r = train.train(get_spark("ml", s), s, log=log)
    return {"model_version": r.model_version, "alias": r.alias, "reason": r.reason, "auc": r.auc,
            "brier": r.brier, "run_id": r.run_id}


@spark_step
def score_relapse_risk(s: Settings, log=print) -> dict:
    """Daily: the champion scores everyone in a centre into gold.relapse_risk_score (with drift)."""
    from ml.relapse_risk import score

    return score.score(get_spark("ml", s), s, log=log)


@spark_step
def train_security_model(s: Settings, log=print) -> dict:
    """Weekly: unit-day features from the live feeds and the incident register, candidates, backtest, MLflow."""
    from ml.security_situation import train

    r = train.train(get_spark("ml", s), s, log=log)
    return {"model_version": r.model_version, "alias": r.alias, "reason": r.reason, "auc": r.roc_auc,
            "baseline_auc": r.baseline_auc, "run_id": r.run_id, "backtest": r.backtest}


def _json_safe(value):
    """A step's result as Airflow can store it (XCom is JSON): NaN and infinities become None, numpy numbers
    plain ones."""
    import math

    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@spark_step
def score_security_situation(s: Settings, log=print) -> dict:
    """Daily and after each feed update: every unit-day into gold.security_situation_score, the per-centre
    picture into gold.security_situation_current."""
    from ml.security_situation import score

    return score.score(get_spark("ml", s), s, log=log)
