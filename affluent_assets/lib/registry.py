"""MLflow: log a training run, register the model version, load a version or alias to score.

Plain functions over an explicit tracking URI; the Dagster resource only holds configuration.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pandas as pd

from affluent_assets.lib.evaluation import HoldoutCurve

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

CHAMPION_ALIAS = "champion"


# MLflow is imported where it is used: importing it costs over a second, and a landing run that
# scores with a version it already holds (lib/champion.py's cache) never needs it.
def _client(tracking_uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _not_found() -> type[Exception]:
    from mlflow.exceptions import MlflowException

    return MlflowException


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    threshold: float
    decile_edges: list[float]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def ensure_experiment(tracking_uri: str, experiment: str, artifact_root: str | None) -> str:
    """The experiment id, creating it with artifacts under `artifact_root` if new."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = experiment_artifact_location(tracking_uri, artifact_root)
    return client.create_experiment(experiment, artifact_location=location)


def experiment_artifact_location(tracking_uri: str, artifact_root: str | None) -> str | None:
    """Where a new experiment keeps its artifacts. A local folder only serves a local store: a
    tracking server's clients on other hosts could not load `models:/...` from this disk, so
    there the server's own artifact location applies (None) unless `artifact_root` is a URI
    every host can reach (s3://, gs://, mlflow-artifacts:/ ...)."""
    if not artifact_root:
        return None
    if "://" in artifact_root or artifact_root.startswith("mlflow-artifacts:"):
        return artifact_root
    if urlparse(tracking_uri).scheme in ("http", "https", "databricks"):
        return None
    return Path(artifact_root).resolve().as_uri()


def log_and_register(
    *,
    tracking_uri: str,
    experiment: str,
    artifact_root: str | None,
    model_name: str,
    model,
    signature_rows: pd.DataFrame,
    params: dict,
    metrics: dict[str, float],
    threshold: float,
    decile_edges: list[float],
    tags: dict[str, str],
    run_name: str,
    comparison: pd.DataFrame | None = None,
    tuning_trials: pd.DataFrame | None = None,
    documents: dict[str, dict] | None = None,
) -> RegisteredModel:
    """One MLflow run per training: params, metrics, the model with its signature, and a new
    registered version carrying its threshold and decile edges as tags (scoring needs both).
    Each compared candidate becomes a nested child run with its per-fold figures; the tuning
    trials and `documents` (JSON, e.g. feature importance) are artifacts of the parent run."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for row in [] if comparison is None else comparison.to_dict("records"):
            _log_candidate(experiment_id, row)
        if tuning_trials is not None and len(tuning_trials):
            mlflow.log_table(tuning_trials, artifact_file="tuning_trials.json")
        for name, document in (documents or {}).items():
            mlflow.log_dict(document, f"{name}.json")
        signature = infer_signature(signature_rows, model.predict_proba(signature_rows)[:, 1])
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            # The signature records column names and types only: no customer row is copied into
            # the artifact store (it may be a shared server), so no input example is logged.
            signature=signature,
            registered_model_name=model_name,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            # MLflow's own serving (`mlflow models serve`, pyfunc) then answers with the
            # calibrated probabilities, not labels cut at 0.5 (the champion's threshold is not).
            pyfunc_predict_fn="predict_proba",
            pip_requirements=model_requirements(),
        )
        version = str(info.registered_model_version)
    client = _client(tracking_uri)
    client.set_model_version_tag(model_name, version, "threshold", repr(threshold))
    client.set_model_version_tag(model_name, version, "decile_edges", json.dumps(decile_edges))
    return RegisteredModel(model_name, version, run.info.run_id, threshold, decile_edges)


# What unpickling and scoring a logged model imports: the pipeline and its calibrator are
# classes of this package, scikit-learn and XGBoost, over NumPy, SciPy and pandas.
MODEL_DISTRIBUTIONS = ("affluent-assets", "cloudpickle", "numpy", "pandas", "pyarrow",
                       "scikit-learn", "scipy")  # fmt: skip


def model_requirements() -> list[str]:
    """The model's pip requirements, pinned to the versions installed. Named, not inferred:
    MLflow infers them by importing the model in a subprocess (about 4 s per logged model),
    and its inference left out the booster's own distribution (`xgboost-cpu`), so an
    environment built from them could not load the model."""
    from importlib import metadata

    names = [*MODEL_DISTRIBUTIONS, *metadata.packages_distributions().get("xgboost", [])]
    found = []
    for name in dict.fromkeys(names):
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:  # e.g. the package run from a source tree
            continue
    return found


def _log_candidate(experiment_id: str, row: dict) -> None:
    import mlflow

    name = row["model"]
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
        mlflow.log_params({key: row[key] for key in ("family", "class_weighting", "rank")})
        for metric in ("pr_auc", "roc_auc", "brier"):
            for fold, value in enumerate(row[f"{metric}_by_fold"], start=1):
                mlflow.log_metric(f"fold_{metric}", value, step=fold)
            mlflow.log_metric(f"{metric}_mean", row[f"{metric}_mean"])
            mlflow.log_metric(f"{metric}_std", row[f"{metric}_std"])
        mlflow.log_metric("fit_seconds_mean", row["fit_seconds_mean"])


def describe_version(
    tracking_uri: str, model_name: str, version_or_alias: str
) -> RegisteredModel | None:
    """A registered version (by number, or by alias such as `champion`) with its scoring tags;
    None when there is no such version or alias (e.g. before the first training)."""
    client = _client(tracking_uri)
    try:
        if version_or_alias.isdigit():
            found = client.get_model_version(model_name, version_or_alias)
        else:
            found = client.get_model_version_by_alias(model_name, version_or_alias)
    except _not_found():
        return None
    return RegisteredModel(
        name=model_name,
        version=str(found.version),
        run_id=found.run_id,
        threshold=float(found.tags["threshold"]),
        decile_edges=json.loads(found.tags["decile_edges"]),
    )


def load_model(tracking_uri: str, model: RegisteredModel):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.sklearn.load_model(model.uri)


def set_alias(
    tracking_uri: str, model_name: str, version: str, alias: str = CHAMPION_ALIAS
) -> None:
    _client(tracking_uri).set_registered_model_alias(model_name, alias, version)


PENDING_TAG = "pending_approval"


def mark_pending_approval(tracking_uri: str, model_name: str, version: str) -> None:
    """A version that passed every gate but waits for a person before it becomes champion."""
    _client(tracking_uri).set_model_version_tag(model_name, version, PENDING_TAG, "true")


def approve(tracking_uri: str, model_name: str, version: str, approver: str) -> None:
    """Make a version that waits for approval the champion, recording who approved it when.
    Raises ValueError for a version that is not waiting (never passed the gates, or approved)."""
    client = _client(tracking_uri)
    try:
        tags = client.get_model_version(model_name, str(version)).tags
    except _not_found() as error:
        raise ValueError(f"{model_name} v{version}: no such version") from error
    if tags.get(PENDING_TAG) != "true":
        raise ValueError(f"{model_name} v{version} is not waiting for approval")
    set_alias(tracking_uri, model_name, str(version))
    client.set_model_version_tag(model_name, str(version), PENDING_TAG, "false")
    client.set_model_version_tag(model_name, str(version), "approved_by", approver)
    client.set_model_version_tag(
        model_name, str(version), "approved_at", datetime.now(UTC).isoformat(timespec="seconds")
    )


HOLDOUT_CURVE_ARTIFACT = "holdout_curve.json"


def log_holdout_curve(tracking_uri: str, run_id: str, curve: HoldoutCurve) -> None:
    """Store the holdout precision curve with the training run, so every list the version
    scores (landed batches too) can say how precise calling down to each customer will be."""
    _client(tracking_uri).log_dict(run_id, curve.to_dict(), HOLDOUT_CURVE_ARTIFACT)


def load_holdout_curve(tracking_uri: str, model: RegisteredModel) -> HoldoutCurve | None:
    """The version's holdout curve; None for a version trained before curves were stored."""
    with tempfile.TemporaryDirectory(prefix="curve-") as folder:
        try:
            path = _client(tracking_uri).download_artifacts(
                model.run_id, HOLDOUT_CURVE_ARTIFACT, folder
            )
        except (_not_found(), OSError):
            return None
        return HoldoutCurve.from_dict(json.loads(Path(path).read_text()))


MODEL_CARD_ARTIFACT = "model_card.md"


def log_model_card(tracking_uri: str, run_id: str, card: str) -> None:
    """The generated model card (markdown) with the training run of its version."""
    _client(tracking_uri).log_text(run_id, card, MODEL_CARD_ARTIFACT)


def holdout_metric(tracking_uri: str, name: str, version: str, metric: str) -> float | None:
    """The `holdout_<metric>` logged on the training run of a version; None if absent."""
    client = _client(tracking_uri)
    try:
        run_id = client.get_model_version(name, str(version)).run_id
    except _not_found():
        return None
    return client.get_run(run_id).data.metrics.get(f"holdout_{metric}")


def log_holdout_metrics(tracking_uri: str, run_id: str, metrics: dict[str, float]) -> None:
    """Add holdout figures to the training run, prefixed `holdout_`, once they are measured."""
    client = _client(tracking_uri)
    for name, value in metrics.items():
        client.log_metric(run_id, f"holdout_{name}", value)
