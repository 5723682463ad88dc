"""The split, the trained and registered model, and its holdout evaluation."""

import json
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from affluent_assets.defs.common import DUCKDB_POOL, table_metadata
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import evaluation, registry
from affluent_assets.lib.features import label_vector
from affluent_assets.lib.training import (
    XGBoostParams,
    predict_probability,
    split_customers,
    train_affluent_model,
)


class SplitConfig(dg.Config):
    holdout_fraction: float = 0.3
    seed: int = 42


class ModelConfig(dg.Config):
    """Threshold policy and model settings. The threshold is the highest score cut-off whose
    recall on out-of-fold training rows reaches `target_recall`."""

    target_recall: float = 0.80
    cv_folds: int = 5
    seed: int = 42
    n_estimators: int = 400
    max_depth: int = 4
    learning_rate: float = 0.05


@dg.asset(group_name="model", pool=DUCKDB_POOL)
def customer_split(config: SplitConfig, clean_customers: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Stratified, seeded assignment of each customer to `train` or `holdout`. Every fitted
    step uses `train` rows only; every reported figure comes from `holdout` rows."""
    split = split_customers(
        clean_customers["customer_key"],
        label_vector(clean_customers),
        config.holdout_fraction,
        config.seed,
    )
    counts = split.groupby("split")["is_affluent"].agg(["size", "mean"])
    return dg.Output(
        split,
        metadata={
            **table_metadata(split),
            "train_rows": int(counts.loc["train", "size"]),
            "holdout_rows": int(counts.loc["holdout", "size"]),
            "train_affluent_share": float(counts.loc["train", "mean"]),
            "holdout_affluent_share": float(counts.loc["holdout", "mean"]),
        },
    )


def rows_of(
    split_name: str, features: pd.DataFrame, split: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """Feature rows and labels of one side of the split, in a stable order."""
    chosen = split.loc[split["split"] == split_name, ["customer_key", "is_affluent"]]
    merged = features.merge(chosen, on="customer_key", how="inner", validate="one_to_one")
    return merged.drop(columns="is_affluent"), merged["is_affluent"].astype("int64")


@dg.asset(group_name="model", pool=DUCKDB_POOL)
def affluent_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_models: MlflowModels,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Imputation + encoding + XGBoost in one scikit-learn Pipeline, fitted on training rows only,
    class imbalance weighted; the threshold chosen on out-of-fold training predictions. Logged
    to MLflow (params, metrics, model with signature) and registered as a new version, which
    becomes the `champion` alias the landing sensor scores with. The table is one row: the
    registered version and its threshold."""
    train_features, train_labels = rows_of("train", customer_features, customer_split)
    params = XGBoostParams(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
    )
    trained = train_affluent_model(
        train_features, train_labels, params, config.target_recall, config.cv_folds, config.seed
    )
    oof = evaluation.holdout_metrics(
        train_labels, trained.oof_probability, trained.threshold.threshold
    )
    cv_metrics = {f"cv_{name}": value for name, value in oof.items()}
    registered = registry.log_and_register(
        tracking_uri=mlflow_models.tracking_uri,
        experiment=mlflow_models.experiment,
        artifact_root=mlflow_models.artifact_root,
        model_name=mlflow_models.model_name,
        pipeline=trained.pipeline,
        input_example=train_features.drop(columns="customer_key").head(50),
        params={
            **trained.params,
            "target_recall": config.target_recall,
            "threshold_policy": "target_recall",
        },
        metrics={**cv_metrics, "threshold": trained.threshold.threshold},
        threshold=trained.threshold.threshold,
        decile_edges=trained.decile_edges,
        tags={"dagster_run_id": context.run_id, "training_rows": str(len(train_features))},
        run_name=f"affluent_model-{context.run_id[:8]}",
    )
    registry.set_alias(mlflow_models.tracking_uri, registered.name, registered.version)
    choice = trained.threshold
    row = pd.DataFrame(
        [
            {
                "model_name": registered.name,
                "model_version": registered.version,
                "mlflow_run_id": registered.run_id,
                "trained_at": datetime.now(UTC).replace(tzinfo=None),
                "threshold": choice.threshold,
                "threshold_policy": choice.policy,
                "target_recall": choice.target,
                "cv_recall_at_threshold": choice.recall,
                "cv_precision_at_threshold": choice.precision,
                "cv_flagged_share": choice.flagged_share,
                "cv_roc_auc": oof["roc_auc"],
                "cv_pr_auc": oof["pr_auc"],
                "training_rows": len(train_features),
                "training_affluent": int(train_labels.sum()),
                "decile_edges": json.dumps(trained.decile_edges),
                "params": json.dumps(trained.params),
            }
        ]
    )
    context.log.info(
        f"registered {registered.name} v{registered.version}: threshold {choice.threshold:.4f} "
        f"(cv recall {choice.recall:.3f}, cv precision {choice.precision:.3f})"
    )
    return dg.Output(
        row,
        metadata={
            "model_uri": registered.uri,
            "mlflow_run_id": registered.run_id,
            "threshold": choice.threshold,
            "cv_recall_at_threshold": choice.recall,
            "cv_precision_at_threshold": choice.precision,
            "cv_roc_auc": oof["roc_auc"],
            "cv_pr_auc": oof["pr_auc"],
            "training_rows": len(train_features),
        },
    )


def registered_model(affluent_model: pd.DataFrame) -> registry.RegisteredModel:
    """The model version the upstream `affluent_model` materialization registered."""
    row = affluent_model.iloc[0]
    return registry.RegisteredModel(
        name=row["model_name"],
        version=str(row["model_version"]),
        run_id=row["mlflow_run_id"],
        threshold=float(row["threshold"]),
        decile_edges=json.loads(row["decile_edges"]),
    )


def confusion_markdown(metrics: dict[str, float]) -> str:
    cell = {name: f"{metrics[name]:.0f}" for name in metrics}
    return (
        "| | predicted NORMAL | predicted AFFLUENT |\n|---|---|---|\n"
        f"| actual NORMAL | {cell['true_negatives']} | {cell['false_positives']} |\n"
        f"| actual AFFLUENT | {cell['false_negatives']} | {cell['true_positives']} |"
    )


@dg.asset(group_name="model", pool=DUCKDB_POOL)
def model_evaluation(
    mlflow_models: MlflowModels,
    affluent_model: pd.DataFrame,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Holdout figures of the registered model (rows it never saw): ROC-AUC, PR-AUC, recall,
    precision, F1 and confusion counts at the threshold, recall in the top 5/10/20%. One row
    per metric; the precision-recall curve and lift chart show on the materialization."""
    model = registered_model(affluent_model)
    pipeline = mlflow_models.load(model)
    holdout_features, holdout_labels = rows_of("holdout", customer_features, customer_split)
    probability = predict_probability(pipeline, holdout_features)
    metrics = evaluation.holdout_metrics(holdout_labels, probability, model.threshold)
    registry.log_holdout_metrics(mlflow_models.tracking_uri, model.run_id, metrics)
    lift = evaluation.lift_table(holdout_labels, probability)
    table = pd.DataFrame(
        {
            "model_name": model.name,
            "model_version": model.version,
            "evaluated_on": "holdout",
            "metric": list(metrics),
            "value": list(metrics.values()),
        }
    )
    headline = {
        k: metrics[k] for k in ("roc_auc", "pr_auc", "recall", "precision", "f1", "threshold")
    }
    return dg.Output(
        table,
        metadata={
            **headline,
            "confusion_matrix": dg.MetadataValue.md(confusion_markdown(metrics)),
            "precision_recall_curve": dg.MetadataValue.md(
                evaluation.precision_recall_plot(holdout_labels, probability, model.threshold)
            ),
            "lift_chart": dg.MetadataValue.md(evaluation.lift_plot(lift)),
            "lift_by_decile": dg.MetadataValue.md(lift.to_markdown(index=False, floatfmt=".3f")),
            "dagster/row_count": len(table),
        },
    )
