#!/usr/bin/env python
"""Imports what the image's processes import (webserver, daemon, code server, run workers,
`affluent` commands, the upload page, an MLflow server), so that the build writes bytecode
for exactly those modules; everything else stays source only (compiled on import if ever
needed). Run once at build time with bytecode writing on."""

import importlib
import os

os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")

MODULES = [
    "affluent_assets.definitions",
    "affluent_assets.cli",
    "affluent_assets.run",
    "affluent_assets.instance",
    "affluent_assets.web.app",
    # Imported when a model first explains (numba and llvmlite with it), not by the modules
    # above: without their bytecode, numba's import alone costs about 3 s more in the service
    # and in every landing run's reasons.
    "affluent_assets.lib.tree_shap",
    "dagster._cli",
    "dagster._daemon.cli",
    "dagster._grpc.server",
    "dagster._core.storage.runs.sqlite",
    "dagster_webserver.cli",
    "dagster_webserver.webserver",
    "dagster_graphql",
    "dagster_postgres",
    "dagster_k8s",
    "dagster_docker",
    "dagster_mlflow",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.xgboost",
    "mlflow.pyfunc",
    "mlflow.server",
    "mlflow.server.handlers",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.artifact.http_artifact_repo",
    "mlflow.store.artifact.local_artifact_repo",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "xgboost",
    "pandas.io.parquet",
    "pandas.io.excel",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "duckdb",
    "python_calamine",
    "openpyxl",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "psycopg2",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
    "alembic",
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_impl",
    "starlette.applications",
    "multipart",
    "gunicorn",
    "flask",
    "tabulate",
    "tqdm",
]

for name in MODULES:
    importlib.import_module(name)
