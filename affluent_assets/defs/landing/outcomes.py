"""model_outcomes: realized precision and recall of each model version on landed files that
carried their outcome (`C_seg`), against the holdout's expectation, with a warning check."""

import dagster as dg
import matplotlib.pyplot as plt
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.common import DUCKDB_POOL, table_metadata
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import evaluation, outcomes

OUTCOME_CHECK = "realized_precision"


class OutcomeConfig(dg.Config):
    margin: float = 0.10  # how far realized precision may fall below the holdout's
    min_flagged: int = 50  # flagged labelled customers needed to judge a version


@dg.asset(
    group_name="monitoring",
    pool=DUCKDB_POOL,
    deps=["landed_batch_views"],
    check_specs=[
        dg.AssetCheckSpec(
            OUTCOME_CHECK,
            asset="model_outcomes",
            description="Warns when a version's realized precision falls below its holdout "
            "precision by more than the margin.",
        )
    ],
)
def model_outcomes(config: OutcomeConfig, duckdb: DuckDBResource, mlflow_models: MlflowModels):
    """Per model version, on landed rows whose file carried `C_seg`: customers, AFFLUENT,
    flagged, realized precision and recall at the threshold and in the top 5/10/20%, and the
    precision the holdout promised (`expected_precision`)."""
    with duckdb.get_connection() as con:
        table = outcomes.realized_outcomes(con)
    table["expected_precision"] = [
        mlflow_models.holdout_metric(version, "precision") for version in table["model_version"]
    ]
    short = outcomes.shortfalls(table, config.margin, config.min_flagged)
    yield dg.Output(
        table,
        metadata={
            **table_metadata(table),
            "versions_with_outcomes": len(table),
            "realized_vs_expected": dg.MetadataValue.md(_plot(table)) if len(table) else "none",
        },
    )
    yield dg.AssetCheckResult(
        check_name=OUTCOME_CHECK,
        passed=short.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=_describe(table, short, config.margin),
    )


def _describe(table, short, margin: float) -> str:
    if table.empty:
        return "no outcomes yet"
    if short.empty:
        return f"realized precision within {margin:.2f} of the holdout's"
    return "; ".join(
        f"v{r.model_version}: realized precision {r.realized_precision:.3f} vs expected "
        f"{r.expected_precision:.3f} on {int(r.flagged):,} flagged customers"
        for r in short.itertuples()
    )


def _plot(table) -> str:
    figure, axis = plt.subplots(figsize=(6, 3))
    positions = range(len(table))
    axis.bar([p - 0.2 for p in positions], table["expected_precision"], 0.4, label="holdout")
    axis.bar([p + 0.2 for p in positions], table["realized_precision"], 0.4, label="realized")
    axis.set_xticks(list(positions), [f"v{v}" for v in table["model_version"]])
    axis.set_ylabel("precision at the threshold")
    axis.legend()
    return evaluation.png_markdown(figure, "Realized vs expected precision")
