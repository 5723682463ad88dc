"""Batch rescoring of files dropped in the landing folder: one dynamic partition per file, one
run per file or per group of small files that landed together (group.py).

For each file, one step streams it in chunks (read, contract check, cleaning and features with the
training code, champion scores) into `batch_scores`, then explains the batch's candidates into
`batch_candidates`. Both are Parquet files in the lake (lib/lake.py), published by rename
when complete, so a reader sees a batch whole or not at all and no lock is taken while a file
is read or scored. A bad file is moved to the quarantine folder with a reason and the run
fails; nothing stored changes.
"""

import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.defs.common import DUCKDB_POOL, schema_check_spec
from affluent_assets.defs.landing import group
from affluent_assets.defs.landing import run as landing_run
from affluent_assets.defs.landing.estimate_check import ESTIMATE_CHECK_SPEC
from affluent_assets.defs.landing.views import ensure_views
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import lake
from affluent_assets.lib.drift import SIGNIFICANT_PSI
from affluent_assets.lib.extract_io import DEFAULT_CHUNK_ROWS
from affluent_assets.names import (
    DRIFT_CHECK,
    QUALITY_CHECK,
)

landed_batches = dg.DynamicPartitionsDefinition(name="landed_batches")

BATCH_DESCRIPTIONS = {
    "batch_key": "Partition key: the landing file name made safe",
    "source_file": "Landing file name as dropped",
    "content_hash": "sha256 of the file's bytes; the same content is scored once",
    "customer_key": "Row identifier `<C_ID>-<source_row>`; unique although C_ID repeats",
    "source_row": "1-based data row in the file (row 1 = first row under the header)",
    "c_seg": "Label if the file had one (landing files may not)",
    "expected_precision": "Holdout precision of calling everyone scored at or above this "
    "customer (the champion's holdout curve)",
    "reason_1": "Strongest feature pushing this score up: `feature = value (+contribution)`",
    "run_id": "The Dagster run that scored the batch",
}


class LandingConfig(dg.Config):
    """One landing run: folders (empty means the configured default, see settings) and how
    many rows are read and scored at a time (memory grows with this, not with the file)."""

    landing_dir: str = ""
    quarantine_dir: str = ""
    lake_dir: str = ""
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    # The file in landing_dir when the batch key is not its name's (`affluent score PATH`).
    file_name: str = ""
    # The run's files as its sensor saw them (batch key -> file name), and each one's trace.
    files: dict[str, str] = {}
    traceparents: dict[str, str] = {}


def _partitioned(specs: list[dg.AssetCheckSpec]) -> list[dg.AssetCheckSpec]:
    """Each file's checks are its partition's: a run may score several files. None blocks:
    a file that fails its contract check publishes nothing (its batch keeps what it had), and
    a blocking check's result would be the step's, not one file's."""
    with warnings.catch_warnings():  # partitioned checks are a Dagster preview in 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [spec._replace(partitions_def=landed_batches, blocking=False) for spec in specs]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "batch_scores",
            partitions_def=landed_batches,
            group_name="landing",
            description="Every row of a landing file scored with the champion: probability, "
            "decile, predicted segment, model version (lake: batch_scores/<batch>.parquet).",
            skippable=True,
        ),
        dg.AssetSpec(
            "batch_candidates",
            partitions_def=landed_batches,
            group_name="landing",
            deps=["batch_scores"],
            description="The batch's hidden affluent candidates with their three reasons and "
            "expected precision (lake: batch_candidates/<batch>.parquet).",
            skippable=True,
        ),
    ],
    check_specs=_partitioned(
        [
            schema_check_spec("batch_scores", "The data contract (label optional), every row."),
            dg.AssetCheckSpec(
                QUALITY_CHECK, asset="batch_scores", description="Unknown levels, ages (warn)."
            ),
            dg.AssetCheckSpec(
                DRIFT_CHECK,
                asset="batch_scores",
                description="Population stability index of key features against the training "
                f"rows (warns at PSI >= {SIGNIFICANT_PSI}, higher for batches too small to tell).",
            ),
            ESTIMATE_CHECK_SPEC,
        ]
    ),
)
def batch_scores(
    context: dg.AssetExecutionContext,
    config: LandingConfig,
    duckdb: DuckDBResource,
    mlflow_models: MlflowModels,
    scoring_progress: dg.ResourceParam[landing_run.ProgressCallback],
):
    """Each landing file of the run, streamed in chunks of `chunk_rows`: checked against the data
    contract (`C_seg` optional), cleaned and featurized with the training code and scored with
    the `champion`; then its candidates get reasons and expected precision. A file that cannot
    be read or breaks the contract (on any row) is quarantined with `<name>.reason.txt` and the
    run fails naming file, columns and rows, after its other files are scored; content already
    scored under another batch adds no rows."""
    yield from group.score_batches(context, config, duckdb, mlflow_models, scoring_progress)


class ViewsConfig(dg.Config):
    lake_dir: str = ""  # empty: the configured default (AFFLUENT_LAKE or data/lake)


@dg.asset(group_name="landing", pool=DUCKDB_POOL)
def landed_batch_views(config: ViewsConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The warehouse's views over landed batches (`batch_scores`, `batch_candidates`,
    `latest_candidates`), empty until the first file lands. Part of the main graph, which owns
    the warehouse's writes, so the landing runs find them in place and only read it."""
    lake_dir = config.lake_dir or settings.lake_dir()
    created = ensure_views(duckdb, lake_dir)
    views = list(lake.view_statements(lake_dir))
    return dg.MaterializeResult(metadata={"lake": lake_dir, "views": views, "created": created})


landing_job = dg.define_asset_job(
    "landing_job",
    selection=dg.AssetSelection.assets(batch_scores),
    partitions_def=landed_batches,
    description="Check, score and explain landing files: one run for a file, or for a group of "
    "small files that landed together (one dynamic partition per file).",
    # One process: a landing file is scored seconds after it lands.
    executor_def=dg.in_process_executor,
)
