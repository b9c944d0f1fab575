"""MLflow: the experiment, the registered model and the champion / challenger rule.

Rule: a newly trained version becomes ``champion`` when there is no champion yet, when the champion
cannot score the candidate's holdout (its signature differs from the current feature contract), or
when, on the candidate's own holdout, the candidate's ROC-AUC exceeds the champion's by at least
``MIN_AUC_GAIN`` and its Brier score is not worse by more than ``MAX_BRIER_LOSS``. Otherwise the
version gets the ``challenger`` alias and the reason is written to its tags and the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "relapse_risk"
EXPERIMENT = "relapse_risk"
MIN_AUC_GAIN = 0.01
MAX_BRIER_LOSS = 0.005


class SignatureMismatch(ValueError):
    """The registered model expects other inputs than the feature frame holds."""


def mlflow_for(s):
    import mlflow

    s.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(s.tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=Path(s.mlflow_artifact_root).as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def check_signature(signature, columns: list[str]) -> None:
    """Refuse a model whose input signature is not exactly the frame's feature columns."""
    if signature is None or signature.inputs is None:
        raise SignatureMismatch(f"model {MODEL_NAME} has no input signature: it cannot be checked, so it is not used")
    expected = signature.inputs.input_names()
    if list(expected) != list(columns):
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        raise SignatureMismatch(f"model {MODEL_NAME}@champion expects inputs {expected}; the feature frame has "
                                f"{columns} (missing {missing}, unexpected {extra}). Retrain (the weekly "
                                "relapse_train DAG) so that a model for the current features becomes champion.")


@dataclass(frozen=True)
class Decision:
    alias: str                 # "champion" or "challenger"
    reason: str
    champion_version: str | None
    champion_auc: float | None
    champion_brier: float | None


def decide(client, candidate_auc: float, candidate_brier: float, holdout_X, holdout_y, columns: list[str]) -> Decision:
    """Apply the rule against the current champion on the candidate's holdout."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    from ml.relapse_risk.evaluate import metrics

    try:
        current = client.get_model_version_by_alias(MODEL_NAME, "champion")
    except MlflowException:
        return Decision("champion", "no champion yet", None, None, None)
    uri = f"models:/{MODEL_NAME}@champion"
    try:
        check_signature(get_model_info(uri).signature, columns)
    except SignatureMismatch as e:
        return Decision("champion", f"the champion (version {current.version}) cannot score the current features: {e}",
                        current.version, None, None)
    champion = mlflow.sklearn.load_model(uri)
    m = metrics(holdout_y, champion.predict_proba(holdout_X[columns])[:, 1])
    gain, brier_loss = candidate_auc - m.roc_auc, candidate_brier - m.brier
    facts = (f"on the same holdout ({m.n} releases) candidate AUC {candidate_auc:.4f} vs champion {m.roc_auc:.4f} "
             f"(gain {gain:+.4f}, needs >= {MIN_AUC_GAIN}), Brier {candidate_brier:.4f} vs {m.brier:.4f} "
             f"(may be worse by <= {MAX_BRIER_LOSS})")
    if gain >= MIN_AUC_GAIN and brier_loss <= MAX_BRIER_LOSS:
        return Decision("champion", "beats the champion: " + facts, current.version, m.roc_auc, m.brier)
    return Decision("challenger", "does not beat the champion: " + facts, current.version, m.roc_auc, m.brier)


def apply(client, version: str, decision: Decision) -> None:
    client.set_registered_model_alias(MODEL_NAME, decision.alias, version)
    client.set_model_version_tag(MODEL_NAME, version, "alias_decision", decision.alias)
    client.set_model_version_tag(MODEL_NAME, version, "alias_reason", decision.reason[:4900])
