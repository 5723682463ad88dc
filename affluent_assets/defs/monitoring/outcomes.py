"""model_outcomes: realized precision and recall of each model version on landed files that
carried their outcome (`C_seg`) and on campaign outcome files dropped in the outcomes folder,
against the holdout's expectation, with a warning check for each."""

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.defs.common import DUCKDB_POOL, table_metadata
from affluent_assets.defs.landing.assets import landing_job
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import (
    evaluation,
    lake,
    landing,
    outcome_files,
    outcomes,
    uplift,
    warehouse,
)
from affluent_assets.names import (
    CALIBRATION_CHECK,
    OUTCOME_CHECK,
    OUTCOME_FILES_CHECK,
    OUTCOME_FILES_READ,
    QINI_TABLE,
    UPLIFT_TABLE,
)

OUTCOME_FILES_TAG = "affluent/outcome_files"
LABELLED_BATCH_TAG = "affluent/labelled_batch"
OUTCOMES_TICK_SECONDS = settings.monitoring_tick_seconds()


class OutcomeConfig(dg.Config):
    margin: float = 0.10  # how far realized precision may fall below the holdout's
    estimate_margin: float = 0.10  # how far the scores' estimate may part from the holdout's
    min_flagged: int = 50  # flagged labelled customers needed to judge a version
    outcomes_dir: str = ""  # campaign outcome files; default: AFFLUENT_OUTCOMES or data/outcomes


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
        ),
        dg.AssetCheckSpec(
            CALIBRATION_CHECK,
            asset="model_outcomes",
            description="Warns when realized precision falls outside the 90% interval the "
            "flagged customers' own scores gave, or when that estimate and the holdout's figure "
            "part by more than the estimate margin: calibration broke for that population.",
        ),
        dg.AssetCheckSpec(
            OUTCOME_FILES_CHECK,
            asset="model_outcomes",
            description="Warns when an outcome file was quarantined (the reason names the "
            "file, the column and the rows).",
        ),
    ],
)
def model_outcomes(
    context: dg.AssetExecutionContext,
    config: OutcomeConfig,
    duckdb: DuckDBResource,
    mlflow_models: MlflowModels,
):
    """Per source (landed files with `C_seg`, campaign outcome files) and model version:
    customers, AFFLUENT (or upgraded), flagged, realized precision and recall at the threshold
    and in the top 5/10/20%, what the flagged customers' own scores estimated
    (`estimated_precision`, 90% interval) and what the holdout promised (`expected_precision`).
    Outcome files with a control group also give the campaign's uplift (`campaign_uplift`,
    `campaign_qini`)."""
    folder = config.outcomes_dir or settings.outcomes_dir()
    with duckdb.get_connection() as con:
        read = outcome_files.read_outcome_folder(con, folder)
        table = outcomes.realized_outcomes(con, read.records)
        lift, qini = _write_uplift(con, read.records)
    for name, summary in read.accepted.items():
        context.log.info(f"outcome file {name}: {summary}")
    for name, reason in read.rejected.items():
        context.log.warning(f"outcome file {name} quarantined: {reason}")
    table["expected_precision"] = [
        _expected_precision(mlflow_models, r) for r in table.itertuples()
    ]
    short = outcomes.shortfalls(table, config.margin, config.min_flagged)
    broken = outcomes.calibration_breaks(table, config.estimate_margin, config.min_flagged)
    yield dg.Output(
        table,
        metadata={
            **table_metadata(table),
            "versions_with_outcomes": table["model_version"].nunique(),
            "outcome_files": dg.MetadataValue.md(_files_markdown(read)),
            # the same for programs (the upload page): file name -> summary of what was read
            OUTCOME_FILES_READ: dg.MetadataValue.json(read.accepted),
            "realized_vs_expected": dg.MetadataValue.md(_plot(table)) if len(table) else "none",
            "uplift": dg.MetadataValue.md(uplift.uplift_markdown(lift)),
            "qini": dg.MetadataValue.md(_qini_plot(qini)) if len(qini) else uplift.NO_CONTROL,
        },
    )
    yield dg.AssetCheckResult(
        check_name=CALIBRATION_CHECK,
        passed=broken.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=_describe_calibration(table, broken),
    )
    yield dg.AssetCheckResult(
        check_name=OUTCOME_CHECK,
        passed=short.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=_describe(table, short, config.margin),
    )
    yield dg.AssetCheckResult(
        check_name=OUTCOME_FILES_CHECK,
        passed=not read.rejected,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{n} quarantined: {r}" for n, r in read.rejected.items())
        or f"{len(read.accepted)} outcome file(s) read, none rejected",
        metadata={"outcomes_dir": folder, "quarantined": ", ".join(read.rejected) or "none"},
    )


def _write_uplift(con, records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The campaign's uplift and Qini curve, written beside model_outcomes so the page and
    analysts read the campaign's effect in SQL (empty without control rows)."""
    lift, qini = uplift.uplift_table(records), uplift.qini_curve(records)
    warehouse.replace_table(con, UPLIFT_TABLE, lift)
    warehouse.replace_table(con, QINI_TABLE, qini)
    return lift, qini


def _describe_calibration(table, broken) -> str:
    if table.empty:
        return "no outcomes yet"
    if broken.empty:
        return "realized precision inside the estimate's 90% interval; estimate near the holdout's"
    return "; ".join(
        f"v{r.model_version} ({r.source}): {r.why}: realized {r.realized_precision:.3f}, "
        f"estimated {r.estimated_precision:.3f} ({r.estimated_low:.3f}-{r.estimated_high:.3f}), "
        f"holdout {r.expected_precision:.3f} on {int(r.flagged):,} flagged customers"
        for r in broken.itertuples()
    )


def _qini_plot(qini) -> str:
    import matplotlib.pyplot as plt  # when plotting, not when the code location loads

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for version, curve in qini.groupby("model_version"):
        axis.plot(curve["share_called"], curve["incremental_upgrades"], label=f"v{version}")
        last = curve.iloc[-1]
        axis.plot([0, last["share_called"]], [0, last["incremental_upgrades"]], ":", color="grey")
    axis.set(xlabel="share of the list called (best scores first)",
             ylabel="incremental upgrades", title="Qini curve (dotted: random order)")  # fmt: skip
    axis.legend()
    return evaluation.png_markdown(figure, "Qini curve")


def _files_markdown(read: outcome_files.OutcomeFolderRead) -> str:
    if not read.accepted and not read.rejected:
        return "no outcome files"
    rows = [f"| {name} | read | {summary} |" for name, summary in read.accepted.items()]
    rows += [f"| {name} | quarantined | {reason} |" for name, reason in read.rejected.items()]
    return "| file | answer | detail |\n|---|---|---|\n" + "\n".join(rows)


def _expected_precision(mlflow_models: MlflowModels, row) -> float:
    """What the holdout promised for these customers: its precision at the threshold for a
    labelled file (everyone scored); for an outcome file (those called), its precision when
    calling everyone down to the lowest-scored flagged customer called, which is the list's own
    promise for a top-k list. NaN when the version has no such figure: never judged."""
    curve = None
    if row.source == outcomes.OUTCOME_FILES and pd.notna(row.lowest_flagged_score):
        model = mlflow_models.describe(row.model_version)
        curve = model and mlflow_models.holdout_curve(model)
    if curve is not None:
        promised = curve.at([row.lowest_flagged_score], min_called=evaluation.LIST_MIN_CALLED)
        return float(promised["expected_precision"].iloc[0])
    value = mlflow_models.holdout_metric(row.model_version, "precision")
    return float("nan") if value is None else float(value)


def _describe(table, short, margin: float) -> str:
    if table.empty:
        return "no outcomes yet"
    if short.empty:
        return f"realized precision within {margin:.2f} of the holdout's"
    return "; ".join(
        f"v{r.model_version} ({r.source}): realized precision {r.realized_precision:.3f} vs "
        f"expected {r.expected_precision:.3f} on {int(r.flagged):,} flagged customers"
        for r in short.itertuples()
    )


def _plot(table) -> str:
    import matplotlib.pyplot as plt  # when plotting, not when the code location loads

    figure, axis = plt.subplots(figsize=(6, 3))
    positions = range(len(table))
    axis.bar([p - 0.2 for p in positions], table["expected_precision"], 0.4, label="holdout")
    axis.bar([p + 0.2 for p in positions], table["realized_precision"], 0.4, label="realized")
    labels = [f"v{r.model_version}\n{r.source}" for r in table.itertuples()]
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel("precision at the threshold")
    axis.legend()
    return evaluation.png_markdown(figure, "Realized vs expected precision")


outcomes_job = dg.define_asset_job(
    "outcomes_job",
    selection=[model_outcomes],
    description="Reads the campaign outcome files and refreshes model_outcomes.",
)


def build_outcomes_sensor(
    name: str = "outcomes_sensor", outcomes_dir: str | None = None
) -> dg.SensorDefinition:
    """The sensor over `outcomes_dir` (default: the configured outcomes folder, read each tick):
    one outcomes run when files are new or changed and have stopped changing for a tick."""

    @dg.sensor(
        name=name,
        target=outcomes_job,
        minimum_interval_seconds=OUTCOMES_TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Refreshes model_outcomes when a campaign outcome file (.csv/.xlsx/.parquet) "
        "lands in the outcomes folder.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        folder = outcomes_dir or settings.outcomes_dir()
        cursor = landing.LandingCursor.deserialize(context.cursor)
        plan = landing.plan_tick(cursor, landing.scan_landing(folder))
        ignored = {
            entry: why
            for entry, why in landing.ignored_entries(folder).items()
            if entry != outcome_files.QUARANTINE
        }
        if not plan.ready:
            waiting = f"{len(plan.settling)} outcome file(s) settling" if plan.settling else ""
            skipped = "; ".join(f"{entry!r} not read: {why}" for entry, why in ignored.items())
            return dg.SensorResult(
                skip_reason="; ".join(filter(None, [waiting, skipped])) or "no new outcome files",
                cursor=plan.cursor.serialize(),
            )
        names = [s.name for s in plan.ready]
        context.log.info(f"outcome files ready: {', '.join(names)}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key="|".join(s.run_key for s in plan.ready),
                    run_config={"ops": {"model_outcomes": {"config": {"outcomes_dir": folder}}}},
                    tags={OUTCOME_FILES_TAG: ", ".join(names)[:200]},
                )
            ],
            cursor=plan.cursor.serialize(),
        )

    return _sensor


outcomes_sensor = build_outcomes_sensor()


def batch_is_labelled(lake_dir: str, batch_key: str) -> bool:
    """Whether a landed batch's scores carry `C_seg` (an outcome), from the Parquet footer's
    null counts: no row is read, however large the batch."""
    path = lake.batch_file(lake_dir, lake.SCORES, batch_key)
    if not path.exists():
        return False
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.names.index("c_seg")
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group)
        stats = chunk.column(column).statistics
        if stats is None or not stats.has_null_count or stats.null_count < chunk.num_rows:
            return True
    return False


def build_labelled_batch_sensor(
    name: str = "labelled_batch_outcomes_sensor", lake_dir: str | None = None
) -> dg.SensorDefinition:
    """Refreshes model_outcomes when a landing run scored a file that carries `C_seg`: its
    realized, estimated and expected figures appear without waiting for the main graph."""

    @dg.run_status_sensor(
        name=name,
        minimum_interval_seconds=OUTCOMES_TICK_SECONDS,
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[landing_job],
        request_job=outcomes_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Refreshes model_outcomes when a landed batch carried its outcome (C_seg).",
    )
    def _sensor(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        key = run.tags.get(landing.PARTITION_TAG)
        if key is None or not batch_is_labelled(lake_dir or settings.lake_dir(), key):
            return dg.SkipReason(f"batch {key!r} carries no C_seg: no outcome to measure")
        return dg.RunRequest(run_key=f"labelled:{run.run_id}", tags={LABELLED_BATCH_TAG: key})

    return _sensor


labelled_batch_sensor = build_labelled_batch_sensor()
