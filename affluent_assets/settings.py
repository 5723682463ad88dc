"""Where things live by default. Every path can be overridden by an environment variable, so
the same code runs from a clone, in tests (temporary folders) and in the Docker image."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("AFFLUENT_DATA_DIR") or PROJECT_ROOT / "data")


def extract_location() -> str:
    """A file, or a folder whose newest extract is used; demo data when nothing is there."""
    return os.environ.get("AFFLUENT_EXTRACT") or str(data_dir() / "raw")


def warehouse_path() -> str:
    return os.environ.get("AFFLUENT_WAREHOUSE") or str(data_dir() / "warehouse.duckdb")


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return os.environ.get("AFFLUENT_MLFLOW_ARTIFACTS") or str(data_dir() / "mlartifacts")


def landing_dir() -> str:
    return os.environ.get("AFFLUENT_LANDING") or str(data_dir() / "landing")


def quarantine_dir() -> str:
    return os.environ.get("AFFLUENT_QUARANTINE") or str(data_dir() / "quarantine")


def lake_dir() -> str:
    """Landed-batch results: one Parquet file per batch, read through views in the warehouse."""
    return os.environ.get("AFFLUENT_LAKE") or str(data_dir() / "lake")


def outcomes_dir() -> str:
    """Campaign outcome files (customer key, model version, upgraded yes/no); bad ones go to
    its `quarantine/` folder with their reason."""
    return os.environ.get("AFFLUENT_OUTCOMES") or str(data_dir() / "outcomes")


def control_share() -> float:
    """Share of every campaign list held back as a control group (not to be called), drawn at
    random within each score decile of the list; 0 holds no one back."""
    return float(os.environ.get("AFFLUENT_CONTROL_SHARE") or 0.10)


def control_seed() -> int:
    """Seed of the control draw: the same seed draws the same customers for the same list."""
    return int(os.environ.get("AFFLUENT_CONTROL_SEED") or 21)


def champion_cache_dir() -> str:
    """Scoring models already fetched from the registry, one file per version: a landing run
    whose sensor named the version loads it from here without opening MLflow."""
    return os.environ.get("AFFLUENT_CHAMPION_CACHE") or str(data_dir() / "champion_cache")


def monitoring_tick_seconds() -> int:
    """How often the sensors that read outcomes and retell finished runs as traces look
    (outcome files, labelled batches, run traces): 30 s unless a deployment wants figures
    sooner and sets AFFLUENT_MONITORING_TICK_SECONDS (the end-to-end tests set 5)."""
    return int(os.environ.get("AFFLUENT_MONITORING_TICK_SECONDS") or 30)


def landing_watch_seconds() -> float:
    """How long a landing sensor tick with no file ready keeps watching the folder
    (AFFLUENT_LANDING_WATCH_SECONDS, 4 s: Dagster's daemon starts a tick every 5 s at most;
    0 looks once per tick). At most 30 s, well within the daemon's 60 s wait for a tick."""
    return min(30.0, float(os.environ.get("AFFLUENT_LANDING_WATCH_SECONDS") or 4))


def landing_group_files() -> int:
    """How many small files that land together one landing run scores (1: a run per file).
    Each run is a process that spends seconds starting; two groups use two cores."""
    return max(1, int(os.environ.get("AFFLUENT_LANDING_GROUP_FILES") or 10))


def landing_group_max_bytes() -> int:
    """Files up to this size (AFFLUENT_LANDING_GROUP_MAX_MB, 16 MB: about 100,000 rows of CSV)
    may share a run; a larger file has its own, so it never delays the small ones."""
    return int(float(os.environ.get("AFFLUENT_LANDING_GROUP_MAX_MB") or 16) * 1024 * 1024)
