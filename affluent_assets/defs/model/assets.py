"""The split, the model comparison and trained model, its holdout evaluation, and the champion."""

import json

import dagster as dg
import pandas as pd

from affluent_assets.defs.common import DUCKDB_POOL, table_metadata
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import evaluation, model_card, registry
from affluent_assets.lib.features import label_vector
from affluent_assets.lib.model_selection import SELECTION_METRICS, PromotionFloors
from affluent_assets.lib.promotion import PromotionRules, choose_champion
from affluent_assets.lib.training import (
    CALIBRATION_METHODS,
    FAMILIES,
    predict_probability,
    split_customers,
)
from affluent_assets.lib.training_flow import TrainingOptions, train_platform_model
from affluent_assets.names import PROMOTION_CHECK


class SplitConfig(dg.Config):
    holdout_fraction: float = 0.3
    seed: int = 42


class TrainingConfig(dg.Config):
    """Model choice, tuning budget, calibration and threshold policy (lib/training_flow.py's
    TrainingOptions, whose defaults these are). The threshold is the highest calibrated score
    whose recall on out-of-fold training rows reaches `target_recall`."""

    target_recall: float = TrainingOptions.target_recall
    cv_folds: int = TrainingOptions.cv_folds
    selection_metric: str = TrainingOptions.selection_metric
    families: list[str] = list(TrainingOptions.families)
    # None: every round of the search (reproducible); seconds cap it, machine-dependent.
    tuning_budget_seconds: float | None = TrainingOptions.tuning_budget_seconds
    tuning_candidates: int = TrainingOptions.tuning_candidates
    calibration: str = TrainingOptions.calibration
    seed: int = TrainingOptions.seed

    def options(self) -> TrainingOptions:
        return TrainingOptions(**{**self.model_dump(), "families": tuple(self.families)})


class PromotionConfig(dg.Config):
    """A challenger must reach the champion's holdout PR-AUC minus this tolerance, and the
    absolute floors below (any model, the first included)."""

    tolerance: float = PromotionRules.tolerance
    min_pr_auc: float = PromotionFloors.min_pr_auc
    min_recall: float = PromotionFloors.min_recall
    max_brier_score: float = PromotionFloors.max_brier_score
    # Wait for a person: a model that passes every gate is marked `pending_approval` in MLflow
    # and becomes champion only with `affluent approve <version>`.
    require_approval: bool = PromotionRules.require_approval

    def rules(self) -> PromotionRules:
        floors = PromotionFloors(self.min_pr_auc, self.min_recall, self.max_brier_score)
        return PromotionRules(self.tolerance, floors, self.require_approval)


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


def check_training_config(config: TrainingConfig) -> None:
    """Refuse a configuration that cannot work before any time is spent on tuning."""
    problems = []
    unknown = sorted(set(config.families) - set(FAMILIES))
    if unknown or not config.families:
        problems.append(
            f"families must be a non-empty subset of {list(FAMILIES)}, got {config.families}"
        )
    if config.selection_metric not in SELECTION_METRICS:
        problems.append(f"selection_metric must be one of {list(SELECTION_METRICS)}")
    if config.calibration not in CALIBRATION_METHODS:
        problems.append(f"calibration must be one of {list(CALIBRATION_METHODS)}")
    if not 0 < config.target_recall <= 1:
        problems.append("target_recall must be in (0, 1]")
    if config.cv_folds < 2:
        problems.append("cv_folds must be at least 2")
    if problems:
        raise dg.Failure(description="model_training config: " + "; ".join(problems))


@dg.multi_asset(
    outs={
        "model_comparison": dg.AssetOut(
            group_name="model",
            description="Cross-validated comparison of candidate models on training rows: "
            "one row per candidate with fold figures, mean, spread and fit time.",
        ),
        "affluent_model": dg.AssetOut(
            group_name="model",
            description="The registered model version this training produced (one row).",
        ),
        "out_of_fold_scores": dg.AssetOut(
            group_name="model",
            description="Calibrated out-of-fold score of every training row (from a fold model "
            "that did not see it): how the model scores customers it was not fitted on.",
        ),
    },
    pool=DUCKDB_POOL,
)
def model_training(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow_models: MlflowModels,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
):
    """On training rows only: a time-bounded XGBoost search (successive halving), then a
    logistic-regression baseline, a random forest and XGBoost, each with and without class
    weights, compared by stratified k-fold; the best by `selection_metric` is calibrated on
    its out-of-fold predictions, given its threshold, refitted on all training rows, logged
    to MLflow (candidates as child runs) and registered as a new version."""
    check_training_config(config)
    options = config.options()
    train_features, train_labels = rows_of("train", customer_features, customer_split)
    outcome = train_platform_model(train_features, train_labels, options, context.log.info)
    trained, chosen, choice = outcome.trained, outcome.chosen, outcome.trained.threshold
    registered = registry.log_and_register(
        tracking_uri=mlflow_models.tracking_uri,
        experiment=mlflow_models.experiment,
        artifact_root=mlflow_models.artifact_root,
        model_name=mlflow_models.model_name,
        model=trained.model,
        signature_rows=train_features.drop(columns="customer_key").head(50),
        params=outcome.run_params(options),
        metrics=outcome.run_metrics(),
        threshold=choice.threshold,
        decile_edges=trained.decile_edges,
        tags={"dagster_run_id": context.run_id, "training_rows": str(len(train_features))},
        run_name=f"affluent_model-{context.run_id[:8]}",
        comparison=outcome.comparison,
        tuning_trials=outcome.tuning.trials,
        documents={"feature_importance": outcome.importance.round(6).to_dict()},
    )
    context.log.info(
        f"registered {registered.name} v{registered.version} ({chosen.spec.name}): "
        f"threshold {choice.threshold:.4f}, cv recall {choice.recall:.3f}, "
        f"cv precision {choice.precision:.3f}"
    )
    yield from _training_outputs(outcome, registered, options, train_features, train_labels)


def _training_outputs(outcome, registered, options, train_features, train_labels):
    """model_comparison, out_of_fold_scores and affluent_model, with their metadata."""
    tuning, oof, choice = outcome.tuning, outcome.oof_metrics, outcome.trained.threshold
    comparison_table = outcome.comparison_table(registered.run_id)
    yield dg.Output(
        comparison_table,
        output_name="model_comparison",
        metadata={
            **table_metadata(comparison_table),
            "selected": outcome.chosen.spec.name,
            "tuned_xgboost_params": dg.MetadataValue.json(tuning.params),
            "tuning_seconds": tuning.seconds,
            "tuning_trials": len(tuning.trials),
            "tuning_stopped_by_budget": tuning.stopped_by_budget,
        },
    )
    out_of_fold = pd.DataFrame(
        {
            "customer_key": train_features["customer_key"].to_numpy(),
            "oof_probability": outcome.trained.oof_probability.to_numpy(),
            "model_version": registered.version,
        }
    )
    yield dg.Output(
        out_of_fold, output_name="out_of_fold_scores", metadata=table_metadata(out_of_fold)
    )
    model_row = pd.DataFrame([outcome.model_record(registered, options, train_labels)])
    yield dg.Output(
        model_row,
        output_name="affluent_model",
        metadata={
            **table_metadata(model_row),
            "model_uri": registered.uri,
            "model": outcome.chosen.spec.name,
            "threshold": choice.threshold,
            "cv_recall_at_threshold": choice.recall,
            "cv_precision_at_threshold": choice.precision,
            "cv_roc_auc": oof["roc_auc"],
            "cv_pr_auc": oof["pr_auc"],
            "training_rows": len(train_features),
            "feature_importance": dg.MetadataValue.md(
                evaluation.importance_plot(outcome.importance)
            ),
        },
    )


def registered_model(model_table: pd.DataFrame, version_column: str = "model_version"):
    """The model version named in a one-row model table (`affluent_model`, `champion_model`)."""
    row = model_table.iloc[0]
    return registry.RegisteredModel(
        name=row["model_name"],
        version=str(row[version_column]),
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


@dg.multi_asset(
    outs={
        "model_evaluation": dg.AssetOut(
            group_name="model",
            description="Holdout figures of the newly trained model, one row per metric.",
        ),
        "model_reliability": dg.AssetOut(
            group_name="model",
            description="Holdout calibration: mean predicted vs observed AFFLUENT rate per bin.",
        ),
        "model_group_metrics": dg.AssetOut(
            group_name="model",
            description="Holdout rows, base rate, positive rate, precision and recall at the "
            "threshold per age band and occupation group; the model card shows here.",
        ),
    },
    pool=DUCKDB_POOL,
)
def model_evaluation(
    mlflow_models: MlflowModels,
    affluent_model: pd.DataFrame,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
):
    """Holdout figures of the newly registered model (rows it never saw): ROC-AUC, PR-AUC,
    Brier score, recall, precision, F1 and confusion counts at the threshold, recall in the
    top 5/10/20%; a reliability table; the same figures per age band and occupation group, and
    the model card (logged with the version in MLflow as model_card.md). The precision-recall
    curve and lift chart show here."""
    model = registered_model(affluent_model)
    holdout_features, holdout_labels = rows_of("holdout", customer_features, customer_split)
    if holdout_labels.nunique() < 2:
        raise dg.Failure(
            description=f"the holdout ({len(holdout_labels)} rows) holds only one class; "
            "no honest evaluation is possible: use a larger extract or holdout_fraction"
        )
    probability = predict_probability(mlflow_models.load(model), holdout_features)
    metrics = evaluation.classification_metrics(holdout_labels, probability, model.threshold)
    registry.log_holdout_metrics(mlflow_models.tracking_uri, model.run_id, metrics)
    curve = evaluation.HoldoutCurve.from_holdout(holdout_labels, probability, max_points=20_000)
    registry.log_holdout_curve(mlflow_models.tracking_uri, model.run_id, curve)
    lift = evaluation.lift_table(holdout_labels, probability)
    reliability = evaluation.reliability_table(holdout_labels, probability)
    table = pd.DataFrame(
        {"model_name": model.name, "model_version": model.version, "evaluated_on": "holdout",
         "metric": list(metrics), "value": list(metrics.values())}
    )  # fmt: skip
    yield dg.Output(
        table,
        output_name="model_evaluation",
        metadata=_evaluation_metadata(table, metrics, lift, holdout_labels, probability, model),
    )
    yield dg.Output(
        reliability.assign(model_version=model.version),
        output_name="model_reliability",
        metadata={
            "reliability": dg.MetadataValue.md(
                reliability.to_markdown(index=False, floatfmt=".3f")
            ),
            "brier_score": metrics["brier_score"],
            **table_metadata(reliability),
        },
    )
    groups = model_card.group_metrics(
        holdout_labels, probability, model.threshold, holdout_features
    )
    split_rows = customer_split["split"].value_counts().to_dict()
    card = model_card.model_card(model, metrics, reliability, groups, split_rows)
    registry.log_model_card(mlflow_models.tracking_uri, model.run_id, card)
    yield dg.Output(
        groups.assign(model_version=model.version),
        output_name="model_group_metrics",
        metadata={"model_card": dg.MetadataValue.md(card), **table_metadata(groups)},
    )


def _evaluation_metadata(table, metrics, lift, labels, probability, model) -> dict:
    """What the evaluation shows in the UI: headline figures, confusion counts, the
    precision-recall curve and the lift chart."""
    headline = ("roc_auc", "pr_auc", "brier_score", "recall", "precision", "f1", "threshold")
    return {
        **{k: metrics[k] for k in headline},
        "confusion_matrix": dg.MetadataValue.md(confusion_markdown(metrics)),
        "precision_recall_curve": dg.MetadataValue.md(
            evaluation.precision_recall_plot(labels, probability, model.threshold)
        ),
        "lift_chart": dg.MetadataValue.md(evaluation.lift_plot(lift)),
        "lift_by_decile": dg.MetadataValue.md(lift.to_markdown(index=False, floatfmt=".3f")),
        **table_metadata(table),
    }


@dg.asset(
    group_name="model",
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            PROMOTION_CHECK,
            asset="champion_model",
            blocking=True,
            description="Fails (and stops scoring in this run) when the newly trained model "
            "loses to the champion on the same holdout by more than the tolerance.",
        )
    ],
)
def champion_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    mlflow_models: MlflowModels,
    affluent_model: pd.DataFrame,
    model_evaluation: pd.DataFrame,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
):
    """The model that scores (MLflow alias `champion`). The newly trained model takes over only
    if its holdout PR-AUC is no worse than the current champion's on the same holdout rows,
    within `tolerance`, and it reaches the floors; otherwise the champion stays and the blocking
    check says why (the rules: lib/promotion.py)."""
    challenger = registered_model(affluent_model)
    metrics = model_evaluation.set_index("metric")["value"]
    current = mlflow_models.describe(registry.CHAMPION_ALIAS)
    champion_pr_auc = None
    if current is not None and current.version != challenger.version:
        holdout_features, holdout_labels = rows_of("holdout", customer_features, customer_split)
        scores = predict_probability(mlflow_models.load(current), holdout_features)
        champion_pr_auc = evaluation.classification_metrics(
            holdout_labels, scores, current.threshold
        )["pr_auc"]
    choice = choose_champion(challenger, metrics, current, champion_pr_auc, config.rules())
    if choice.waiting:
        registry.mark_pending_approval(
            mlflow_models.tracking_uri, challenger.name, challenger.version
        )
    elif choice.decision.promote:
        registry.set_alias(mlflow_models.tracking_uri, challenger.name, challenger.version)
    decision, winner = choice.decision, choice.winner
    context.log.info(f"champion: {winner} ({decision.reason})")
    row = pd.DataFrame([choice.record()])
    yield dg.Output(row, metadata={**table_metadata(row), "champion_version": winner})
    yield dg.AssetCheckResult(
        check_name=PROMOTION_CHECK,
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR,
        description=decision.reason,
        metadata={
            "winner": winner,
            "challenger_version": challenger.version,
            "challenger_pr_auc": decision.challenger_pr_auc,
            "champion_pr_auc": -1.0 if champion_pr_auc is None else champion_pr_auc,
            "margin": 0.0 if decision.margin is None else decision.margin,
            "tolerance": decision.tolerance,
        },
    )
