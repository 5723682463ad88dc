"""scored_customers, hidden_affluent_candidates, candidate_segments and candidate_history."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.defs.model.assets import registered_model
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import estimates, history
from affluent_assets.lib.champion import ScoringModel
from affluent_assets.lib.contract import NEGATIVE, POSITIVE
from affluent_assets.lib.control_group import GROUP_DESCRIPTION, ControlPolicy, assign_groups
from affluent_assets.lib.evaluation import (
    LIST_MIN_CALLED,
    HoldoutCurve,
    capacity_count,
    threshold_for_capacity,
)
from affluent_assets.lib.evaluation import operating_points as evaluation_operating_points
from affluent_assets.lib.reasons import reason_codes
from affluent_assets.lib.schemas import scored_customers_schema
from affluent_assets.lib.scorer import score_prepared
from affluent_assets.lib.scoring import prefer_out_of_fold, profile_segments, rank_candidates

CANDIDATE_ID_COLUMNS = [
    "candidate_rank",
    "customer_key",
    "c_id",
    "source_row",
    "affluent_probability",
    "score_decile",
]
CANDIDATE_PROFILE_COLUMNS = ["num_prd", "asset_value", "mthcasa", "mthtd", "gn_occ", "c_hse", "age"]
CANDIDATE_DESCRIPTIONS = {
    "candidate_rank": "1 = highest score; call from the top down",
    "expected_precision": "Holdout precision of calling everyone scored at or above this "
    f"customer, over at least {LIST_MIN_CALLED} holdout customers",
    "estimated_precision": "Mean calibrated score of everyone at or above this customer: the "
    "precision the list's own scores promise (90% interval in _low/_high)",
    "group": GROUP_DESCRIPTION,
    "expected_recall": "Holdout share of AFFLUENT customers reached by calling down to here",
    "reason_1": "Strongest feature pushing this score up: `feature = value (+contribution)`, "
    "in log-odds (XGBoost, logistic regression) or probability (random forest)",
}


@dg.asset(
    group_name="scoring",
    pool=DUCKDB_POOL,
    check_specs=[schema_check_spec("scored_customers", "Probabilities in [0, 1], deciles 1-10.")],
)
def scored_customers(
    mlflow_models: MlflowModels,
    champion_model: pd.DataFrame,
    clean_customers: pd.DataFrame,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
    out_of_fold_scores: pd.DataFrame,
):
    """Every customer scored by the champion model: calibrated P(AFFLUENT), score decile (1 = top
    10% of the training population) and predicted segment at the threshold. Holdout rows carry
    the model's score; training rows carry their out-of-fold score when the champion is the
    model those folds belong to (`score_source` says which)."""
    model = registered_model(champion_model)
    scorer = ScoringModel(mlflow_models.load(model), model)
    # The one scorer; reasons and expected precision are the candidate list's, below.
    scores = score_prepared(scorer, customer_features, explain=False)
    scores = scores.drop(columns=["flagged", "model_version"])
    identity = clean_customers[["customer_key", "c_id", "source_row", "c_seg"]]
    scored = identity.merge(scores, on="customer_key", validate="one_to_one").merge(
        customer_split[["customer_key", "split"]], on="customer_key", validate="one_to_one"
    )
    champion_folds = out_of_fold_scores[out_of_fold_scores["model_version"] == model.version]
    scored = prefer_out_of_fold(scored, champion_folds, model.threshold, model.decile_edges)
    scored = scored.assign(
        threshold=model.threshold,
        model_name=model.name,
        model_version=model.version,
        scored_at=datetime.now(UTC).replace(tzinfo=None),
    )
    scored = yield from validate_with_check(scored_customers_schema(), scored, "scored_customers")
    yield dg.Output(
        scored,
        metadata={
            **table_metadata(scored),
            "predicted_affluent": int((scored["predicted_segment"] == "AFFLUENT").sum()),
            "model_version": model.version,
        },
    )


class CandidatePolicy(dg.Config):
    """Who goes on the list: everyone at or above the model's threshold (`threshold`, chosen
    for the target recall) or the best `capacity` NORMAL customers (`capacity`: a count such
    as "1000" or a share such as "5%")."""

    policy: str = "threshold"
    capacity: str = "1000"
    # Held back as a control group; negative: the setting AFFLUENT_CONTROL_SHARE (default 10%).
    control_share: float = -1.0
    control_seed: int = -1  # negative: AFFLUENT_CONTROL_SEED

    def control(self) -> ControlPolicy:
        default = ControlPolicy.from_settings()
        return ControlPolicy(
            self.control_share if self.control_share >= 0 else default.share,
            self.control_seed if self.control_seed >= 0 else default.seed,
        )


def holdout_scores(scored_customers: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    holdout = scored_customers[scored_customers["split"] == "holdout"]
    return holdout["c_seg"] == POSITIVE, holdout["affluent_probability"]


def normal_scores(scored_customers: pd.DataFrame) -> pd.Series:
    return scored_customers.loc[scored_customers["c_seg"] == NEGATIVE, "affluent_probability"]


@dg.asset(group_name="scoring", pool=DUCKDB_POOL)
def hidden_affluent_candidates(
    context: dg.AssetExecutionContext,
    config: CandidatePolicy,
    mlflow_models: MlflowModels,
    duckdb: DuckDBResource,
    champion_model: pd.DataFrame,
    scored_customers: pd.DataFrame,
    customer_features: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """NORMAL customers on the campaign list, ranked by score, each with how precise a list cut
    at that rank is likely to be (measured on holdout rows) and the three features that pushed
    the score up the most."""
    model = registered_model(champion_model)
    cut = _score_cut(config, model.threshold, scored_customers)
    candidates = rank_candidates(scored_customers, cut)
    expected = _list_figures(scored_customers, candidates["affluent_probability"])
    control = config.control()
    groups = assign_groups(candidates["customer_key"], candidates["affluent_probability"], control)
    candidate_features = candidates[["customer_key"]].merge(
        customer_features, on="customer_key", how="left"
    )
    reasons = reason_codes(mlflow_models.load(model), candidate_features)
    table = pd.concat(
        [
            candidates[CANDIDATE_ID_COLUMNS],
            expected.reset_index(drop=True),
            reasons.reset_index(drop=True),
            candidate_features[CANDIDATE_PROFILE_COLUMNS].reset_index(drop=True),
        ],
        axis=1,
    ).assign(group=groups, model_version=model.version, policy=config.policy, score_cut=cut)
    normal_total = int((scored_customers["c_seg"] == NEGATIVE).sum())
    # Every list is kept: a snapshot per run in the append-only `candidate_history` table.
    snapshot = history.snapshot(
        table.assign(model_version=str(model.version)), context.run_id,
        datetime.now(UTC).replace(tzinfo=None), config.policy, cut,
    )  # fmt: skip
    with duckdb.get_connection() as con:
        snapshots = history.append_snapshot(con, snapshot)
    return dg.Output(
        table,
        metadata={
            **table_metadata(table, CANDIDATE_DESCRIPTIONS),
            "candidates": len(table),
            "policy": config.policy if config.policy == "threshold" else f"top {config.capacity}",
            "score_cut": cut,
            "history_snapshots": snapshots,
            "share_of_normal_customers": len(table) / max(1, normal_total),
            "expected_precision_of_full_list": float(expected["expected_precision"].iloc[-1])
            if len(table)
            else 0.0,
            "control_held_back": int((groups == "control").sum()),
            "control_share": control.share,
            "control_seed": control.seed,
        },
    )


def _score_cut(config: CandidatePolicy, threshold: float, scored_customers: pd.DataFrame) -> float:
    """The lowest score on the list: the model's threshold, or the score that calls the
    policy's capacity of NORMAL customers."""
    if config.policy == "threshold":
        return threshold
    if config.policy == "capacity":
        normal = normal_scores(scored_customers)
        return threshold_for_capacity(normal, capacity_count(config.capacity, len(normal)))
    raise dg.Failure(f"unknown candidate policy {config.policy!r}: use threshold or capacity")


def _list_figures(scored_customers: pd.DataFrame, listed: pd.Series) -> pd.DataFrame:
    """Per candidate: the holdout's figures over at least LIST_MIN_CALLED holdout customers and
    the list's own estimate of calling down to them (its interval beside it)."""
    labels, scores = holdout_scores(scored_customers)
    curve = HoldoutCurve.from_holdout(labels, scores, max_points=None)
    own = estimates.ListCurve.from_scores(listed, curve, min_called=LIST_MIN_CALLED)
    return pd.concat(
        [curve.at(listed, min_called=LIST_MIN_CALLED), own.at(listed)],
        axis=1,
    )


def main_list_estimates(threshold: float, scored_customers: pd.DataFrame) -> pd.DataFrame:
    """The main list's estimates at the threshold and capacity cuts over the NORMAL customers
    (the population it is drawn from), beside the holdout's figures at the same cuts."""
    labels, scores = holdout_scores(scored_customers)
    curve = HoldoutCurve.from_holdout(labels, scores, max_points=None)
    return estimates.list_estimates(
        normal_scores(scored_customers), threshold, curve, min_called=LIST_MIN_CALLED
    )


@dg.asset(group_name="scoring", pool=DUCKDB_POOL)
def candidate_estimates(
    champion_model: pd.DataFrame, scored_customers: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """How precise the main list will be before any outcome: at the threshold and at each
    capacity cut, the estimated precision and recall from the NORMAL customers' own calibrated
    scores with 90% intervals (Poisson-binomial), next to the holdout's figures."""
    model = registered_model(champion_model)
    table = main_list_estimates(model.threshold, scored_customers).assign(
        model_version=model.version
    )
    return dg.Output(
        table,
        metadata={
            **table_metadata(table),
            "estimates": dg.MetadataValue.md(estimates.estimates_markdown(table)),
        },
    )


@dg.asset(group_name="scoring", pool=DUCKDB_POOL)
def operating_points(
    champion_model: pd.DataFrame, scored_customers: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """For a range of thresholds and of contact capacities (top 100, 500, 1,000, 5% and 10% of
    NORMAL customers): expected precision and recall (holdout rows) and how many NORMAL
    customers would be flagged. The row `model_threshold` is the champion's own threshold."""
    model = registered_model(champion_model)
    labels, scores = holdout_scores(scored_customers)
    points = evaluation_operating_points(labels, scores, normal_scores(scored_customers))
    own = evaluation_operating_points(
        labels, scores, normal_scores(scored_customers), thresholds=[model.threshold], capacities=()
    ).assign(policy="model_threshold", setting=f"{model.threshold:.4f}")
    table = pd.concat([own, points], ignore_index=True).assign(model_version=model.version)
    return dg.Output(
        table,
        metadata={
            **table_metadata(table),
            "table": dg.MetadataValue.md(
                table.drop(columns="model_version").to_markdown(index=False, floatfmt=".3f")
            ),
        },
    )


@dg.asset(group_name="scoring", pool=DUCKDB_POOL)
def candidate_segments(
    clean_customers: pd.DataFrame,
    customer_features: pd.DataFrame,
    hidden_affluent_candidates: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Who the candidates are, against AFFLUENT customers and the NORMAL customers not flagged:
    median balances, product counts, and the mix of occupation, housing, education and age
    band. Long format (segment, feature, measure, level, value) for pivoting in SQL."""
    customers = clean_customers.merge(
        customer_features[["customer_key", "age", "total_deposits"]], on="customer_key"
    )
    profile = profile_segments(customers, hidden_affluent_candidates["customer_key"])
    return dg.Output(profile, metadata=table_metadata(profile))
