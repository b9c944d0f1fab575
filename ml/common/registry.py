"""MLflow for every model of the platform: its experiment, the registered model and the champion /
challenger rule, the same for the relapse-risk and the security-situation models.

Rule: a newly trained version becomes ``champion`` when there is no champion yet, when the champion
cannot score the candidate's holdout (its signature differs from the current feature contract), or
when, on the candidate's own holdout, the candidate's ROC-AUC exceeds the champion's by at least
``MIN_AUC_GAIN`` and its Brier score is not worse by more than ``MAX_BRIER_LOSS``. Otherwise the
version gets the ``challenger`` alias and the reason is written to its tags and the run.

Scoring loads ``models:/<name>@champion`` only after checking its input signature against the
feature columns it is about to score (:func:`champion`), and refuses with :class:`SignatureMismatch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIN_AUC_GAIN = 0.01
MAX_BRIER_LOSS = 0.005


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its name (also the experiment's) and the DAG that trains it."""

    name: str
    train_dag: str


class SignatureMismatch(ValueError):
    """The registered model expects other inputs than the feature frame holds (or there is none)."""


def mlflow_for(s, spec: ModelSpec):
    import mlflow

    s.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(s.tracking_uri)
    if mlflow.get_experiment_by_name(spec.name) is None:
        mlflow.create_experiment(spec.name, artifact_location=(Path(s.mlflow_artifact_root) / spec.name).as_uri())
    mlflow.set_experiment(spec.name)
    return mlflow


def check_signature(spec: ModelSpec, signature, columns: list[str]) -> None:
    """Refuse a model whose input signature is not exactly the frame's feature columns."""
    if signature is None or signature.inputs is None:
        raise SignatureMismatch(f"model {spec.name} has no input signature: it cannot be checked, so it is not used")
    expected = signature.inputs.input_names()
    if list(expected) != list(columns):
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        raise SignatureMismatch(f"model {spec.name}@champion expects inputs {expected}; the feature frame has "
                                f"{columns} (missing {missing}, unexpected {extra}). Retrain (the weekly "
                                f"{spec.train_dag} DAG) so that a model for the current features becomes champion.")


def champion(s, spec: ModelSpec, columns: list[str], reference: str | None = None):
    """The champion, checked against ``columns``: (model, model version, the run's ``reference`` artifact
    parsed as JSON or None)."""
    import json

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    mlflow = mlflow_for(s, spec)
    client = MlflowClient(tracking_uri=s.tracking_uri)
    try:
        version = client.get_model_version_by_alias(spec.name, "champion")
    except MlflowException as e:
        raise SignatureMismatch(f"no {spec.name}@champion in the registry: train first (the {spec.train_dag} DAG)") from e
    uri = f"models:/{spec.name}@champion"
    check_signature(spec, get_model_info(uri).signature, columns)
    loaded = mlflow.sklearn.load_model(uri)
    ref = None
    if reference is not None:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=reference)
        with open(path, encoding="utf-8") as fh:
            ref = json.load(fh)
    return loaded, version, ref


@dataclass(frozen=True)
class Decision:
    alias: str                 # "champion" or "challenger"
    reason: str
    champion_version: str | None
    champion_auc: float | None
    champion_brier: float | None


def decide(client, spec: ModelSpec, candidate_auc: float, candidate_brier: float, holdout_X, holdout_y,
           columns: list[str], predict=None) -> Decision:
    """Apply the rule against the current champion on the candidate's holdout. ``predict(model, X)``
    gives the champion's probabilities (default ``predict_proba(X)[:, 1]``)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    from ml.common.evaluate import metrics

    try:
        current = client.get_model_version_by_alias(spec.name, "champion")
    except MlflowException:
        return Decision("champion", "no champion yet", None, None, None)
    uri = f"models:/{spec.name}@champion"
    try:
        check_signature(spec, get_model_info(uri).signature, columns)
    except SignatureMismatch as e:
        return Decision("champion", f"the champion (version {current.version}) cannot score the current features: {e}",
                        current.version, None, None)
    loaded = mlflow.sklearn.load_model(uri)
    p = predict(loaded, holdout_X[columns]) if predict else loaded.predict_proba(holdout_X[columns])[:, 1]
    m = metrics(holdout_y, p)
    gain, brier_loss = candidate_auc - m.roc_auc, candidate_brier - m.brier
    facts = (f"on the same holdout ({m.n} rows) candidate AUC {candidate_auc:.4f} vs champion {m.roc_auc:.4f} "
             f"(gain {gain:+.4f}, needs >= {MIN_AUC_GAIN}), Brier {candidate_brier:.4f} vs {m.brier:.4f} "
             f"(may be worse by <= {MAX_BRIER_LOSS})")
    if gain >= MIN_AUC_GAIN and brier_loss <= MAX_BRIER_LOSS:
        return Decision("champion", "beats the champion: " + facts, current.version, m.roc_auc, m.brier)
    return Decision("challenger", "does not beat the champion: " + facts, current.version, m.roc_auc, m.brier)


def apply(client, spec: ModelSpec, version: str, decision: Decision) -> None:
    client.set_registered_model_alias(spec.name, decision.alias, version)
    client.set_model_version_tag(spec.name, version, "alias_decision", decision.alias)
    client.set_model_version_tag(spec.name, version, "alias_reason", decision.reason[:4900])


def own_types(estimator) -> list[str]:
    """The classes skops does not trust by default that an estimator is built from (calibrator, numpy
    dtypes, the platform's own estimators): listed at save time so that loading needs no pickle and
    runs no foreign code."""
    import skops.io as sio

    return sio.get_untrusted_types(data=sio.dumps(estimator))
