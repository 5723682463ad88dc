"""Resources: where the extract comes from, the DuckDB warehouse, and the MLflow store."""

from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.lib import registry, warehouse
from affluent_assets.lib.contract import REAL_EXTRACT_ROWS
from affluent_assets.lib.extract_io import find_extract, read_extract


class ExtractSource(dg.ConfigurableResource):
    """The ETB extract: a file, or a folder whose newest .xlsx/.csv/.parquet is read. When
    nothing is there, a seeded demo extract of `demo_rows` rows stands in for it."""

    location: str = settings.extract_location()
    demo_rows: int = REAL_EXTRACT_ROWS
    demo_seed: int = 42

    def load(self) -> tuple[pd.DataFrame, str]:
        """The table as read, and a name for where it came from."""
        path = find_extract(self.location)
        if path is not None:
            return read_extract(path), str(path)
        from affluent_assets.lib.demo_data import generate_customers

        frame = generate_customers(self.demo_rows, seed=self.demo_seed)
        return frame, f"demo:rows={self.demo_rows},seed={self.demo_seed}"


class MlflowModels(dg.ConfigurableResource):
    """MLflow tracking store and model registry (SQLite file by default, or a server URI).

    A plain configuration holder: runs are opened and closed inside the training asset (see
    docs/architecture.md for why dagster-mlflow's run-scoped resource is not used)."""

    tracking_uri: str = settings.mlflow_tracking_uri()
    artifact_root: str = settings.mlflow_artifact_root()
    experiment: str = "affluent_assets"
    model_name: str = "affluent_classifier"

    def describe(self, version_or_alias: str) -> registry.RegisteredModel | None:
        """A version by number or alias (`champion`); None if there is none yet."""
        return registry.describe_version(self.tracking_uri, self.model_name, version_or_alias)

    def load(self, model: registry.RegisteredModel):
        """The fitted model (calibrated pipeline) of a registered version."""
        return registry.load_model(self.tracking_uri, model)

    def holdout_metric(self, version: str, metric: str) -> float | None:
        """A holdout figure measured for a version (`precision`, `recall`, ...), if logged."""
        return registry.holdout_metric(self.tracking_uri, self.model_name, version, metric)

    def holdout_curve(self, model: registry.RegisteredModel):
        """The version's holdout precision curve, or None for a model trained without one."""
        return registry.load_holdout_curve(self.tracking_uri, model)


class DuckDBTableIOManager(dg.ConfigurableIOManager):
    """Each asset's DataFrame is one DuckDB table named after the asset, replaced in one
    transaction. (The partitioned landing assets write their batch rows themselves.)"""

    duckdb: DuckDBResource

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        with self.duckdb.get_connection() as con:
            warehouse.replace_table(con, context.asset_key.path[-1], obj)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        with self.duckdb.get_connection() as con:
            return warehouse.read_table(con, context.upstream_output.asset_key.path[-1])


def default_resources() -> dict:
    """Resources for the configured locations; creates the data folder so DuckDB and the
    MLflow SQLite store can open their files."""
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    Path(settings.warehouse_path()).parent.mkdir(parents=True, exist_ok=True)
    duckdb = DuckDBResource(database=settings.warehouse_path())
    return {
        "extract": ExtractSource(),
        "mlflow_models": MlflowModels(),
        "duckdb": duckdb,
        "io_manager": DuckDBTableIOManager(duckdb=duckdb),
        # Where a landing run reports rows done; `affluent score` puts a progress bar here.
        "scoring_progress": dg.ResourceDefinition.hardcoded_resource(no_progress),
    }


def no_progress(phase: str, rows: int) -> None:
    """Runs launched by the sensor report progress in their logs only."""
