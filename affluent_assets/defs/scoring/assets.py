"""scored_customers, hidden_affluent_candidates and candidate_segments."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.defs.model.assets import registered_model
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib.evaluation import precision_at_scores
from affluent_assets.lib.schemas import scored_customers_schema
from affluent_assets.lib.scoring import (
    profile_segments,
    rank_candidates,
    reason_codes,
    score_features,
)

CANDIDATE_PROFILE_COLUMNS = ["num_prd", "asset_value", "mthcasa", "mthtd", "gn_occ", "c_hse", "age"]
CANDIDATE_DESCRIPTIONS = {
    "candidate_rank": "1 = highest score; call from the top down",
    "expected_precision": "Holdout precision of calling everyone scored at or above this customer",
    "expected_recall": "Holdout share of AFFLUENT customers reached by calling down to here",
    "reason_1": "Strongest feature pushing this score up: `feature = value (+log-odds)`",
}


@dg.asset(
    group_name="scoring",
    pool=DUCKDB_POOL,
    check_specs=[schema_check_spec("scored_customers", "Probabilities in [0, 1], deciles 1-10.")],
)
def scored_customers(
    mlflow_models: MlflowModels,
    affluent_model: pd.DataFrame,
    clean_customers: pd.DataFrame,
    customer_features: pd.DataFrame,
    customer_split: pd.DataFrame,
):
    """Every customer scored by the registered model: P(AFFLUENT), score decile (1 = top 10% of
    the training population), predicted segment at the threshold, and which split the row was
    in (scores of `train` rows are in-sample; judge the model by `model_evaluation`)."""
    model = registered_model(affluent_model)
    pipeline = mlflow_models.load(model)
    scores = score_features(pipeline, customer_features, model.threshold, model.decile_edges)
    identity = clean_customers[["customer_key", "c_id", "source_row", "c_seg"]]
    scored = identity.merge(scores, on="customer_key", validate="one_to_one").merge(
        customer_split[["customer_key", "split"]], on="customer_key", validate="one_to_one"
    )
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


@dg.asset(group_name="scoring", pool=DUCKDB_POOL)
def hidden_affluent_candidates(
    mlflow_models: MlflowModels,
    affluent_model: pd.DataFrame,
    scored_customers: pd.DataFrame,
    customer_features: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """NORMAL customers scored at or above the threshold, ranked by score, each with how precise
    a list cut at that rank is likely to be (measured on holdout rows) and the three features
    that pushed the score up the most."""
    model = registered_model(affluent_model)
    candidates = rank_candidates(scored_customers, model.threshold)
    holdout = scored_customers[scored_customers["split"] == "holdout"]
    expected = precision_at_scores(
        holdout["c_seg"] == "AFFLUENT",
        holdout["affluent_probability"],
        candidates["affluent_probability"],
    )
    candidate_features = candidates[["customer_key"]].merge(
        customer_features, on="customer_key", how="left"
    )
    reasons = (
        reason_codes(mlflow_models.load(model), candidate_features) if len(candidates) else None
    )
    table = pd.concat(
        [
            candidates[
                [
                    "candidate_rank",
                    "customer_key",
                    "c_id",
                    "source_row",
                    "affluent_probability",
                    "score_decile",
                ]
            ],
            expected.reset_index(drop=True),
            reasons.reset_index(drop=True)
            if reasons is not None
            else pd.DataFrame(columns=["reason_1", "reason_2", "reason_3"]),
            candidate_features[CANDIDATE_PROFILE_COLUMNS].reset_index(drop=True),
        ],
        axis=1,
    ).assign(model_version=model.version, threshold=model.threshold)
    normal_total = int((scored_customers["c_seg"] == "NORMAL").sum())
    return dg.Output(
        table,
        metadata={
            **table_metadata(table, CANDIDATE_DESCRIPTIONS),
            "candidates": len(table),
            "share_of_normal_customers": len(table) / max(1, normal_total),
            "expected_precision_of_full_list": float(expected["expected_precision"].iloc[-1])
            if len(table)
            else 0.0,
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
