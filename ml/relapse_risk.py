"""Relapse-risk model: train, track and register in MLflow, then score the people in the centres.

Label: admitted again within 365 days of release (only releases at least 365 days before the
data's as-of day are labelled). Features: what is known at admission (age, prior admissions,
sex, education, main drug). The model is a regularised logistic regression: simple, explainable
to the assessment centre, and a baseline later models must beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "relapse_risk"
EXPERIMENT = "relapse_risk"
NUMERIC = ["age_at_admission", "prior_admissions"]
CATEGORICAL = ["sex", "education", "main_drug"]
SCORES_TABLE = "gold.relapse_risk_score"
SQL = Path(__file__).parent / "sql" / "relapse_features.sql"


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_version: str
    auc: float
    n_train: int
    n_test: int


def features(spark):
    return spark.sql(SQL.read_text(encoding="utf-8"))


def build_pipeline(seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("num", StandardScaler(), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=1.0, max_iter=500, class_weight="balanced",
                                                               random_state=seed))])


def _mlflow(s):
    import mlflow

    s.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(s.tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=Path(s.mlflow_artifact_root).as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def train(spark, s, log=print) -> TrainResult:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    pdf = features(spark).toPandas()
    as_of = pd.to_datetime(pdf["admitted_on"]).max()
    labelled = pdf[pdf["released_on"].notna()
                   & (pd.to_datetime(pdf["released_on"]) <= as_of - pd.Timedelta(days=365))].copy()
    X, y = labelled[NUMERIC + CATEGORICAL], labelled["relapsed_365d"].astype(int)
    if len(labelled) < 20 or y.value_counts().min() < 4:
        raise ValueError(f"too few labelled releases to train on ({len(labelled)}, classes {y.value_counts().to_dict()}); "
                         "generate more history (a larger scale factor)")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=s.seed, stratify=y)
    model = build_pipeline(s.seed).fit(X_tr, y_tr)
    auc = float(roc_auc_score(y_te, model.predict_proba(X_te)[:, 1]))
    mlflow = _mlflow(s)
    with mlflow.start_run(run_name="relapse_risk_logreg") as run:
        mlflow.log_params({"model": "logistic_regression", "C": 1.0, "class_weight": "balanced",
                           "label": "readmitted within 365 days of release", "features": ",".join(NUMERIC + CATEGORICAL)})
        mlflow.log_metrics({"auc_test": auc, "n_train": len(X_tr), "n_test": len(X_te),
                            "relapse_rate": float(y.mean())})
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL_NAME,
                                        signature=infer_signature(X_tr, model.predict_proba(X_tr)[:, 1]),
                                        input_example=X_tr.head(3))
    client = MlflowClient(tracking_uri=s.tracking_uri)
    version = str(info.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, "champion", version)
    log(f"relapse model: version {version}, test AUC {auc:.3f} on {len(X_te)} releases (run {run.info.run_id})")
    return TrainResult(run.info.run_id, version, auc, len(X_tr), len(X_te))


def score(spark, s, log=print) -> int:
    """Scores every admission still in a centre with the champion model; rewrites the score table."""
    import pandas as pd
    import pyarrow as pa
    from mlflow import MlflowClient
    from pyspark.sql import functions as F

    mlflow = _mlflow(s)
    version = MlflowClient(tracking_uri=s.tracking_uri).get_model_version_by_alias(MODEL_NAME, "champion").version
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@champion")
    pdf = features(spark).filter("in_centre").toPandas()
    if pdf.empty:
        raise ValueError("nobody is in a centre: nothing to score")
    pdf["score"] = model.predict_proba(pdf[NUMERIC + CATEGORICAL])[:, 1]
    pdf["risk_band"] = pd.cut(pdf["score"], [-0.01, 0.4, 0.7, 1.01], labels=["低", "中", "高"]).astype(str)
    # Through an Arrow table: pandas 3 keeps strings as chunked Arrow arrays, which Spark's pandas conversion
    # cannot take (it would fall back, row by row, to the slow path).
    scored = pa.Table.from_pandas(pdf[["person_pk", "admission_id", "centre", "score", "risk_band"]],
                                  preserve_index=False)
    out = spark.createDataFrame(scored) \
        .withColumn("model_name", F.lit(MODEL_NAME)).withColumn("model_version", F.lit(str(version))) \
        .withColumn("scored_at", F.current_timestamp())
    out.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(SCORES_TABLE)
    log(f"relapse model: scored {len(pdf)} people in the centres with version {version}")
    return len(pdf)
