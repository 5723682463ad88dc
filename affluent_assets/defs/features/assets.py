"""clean_customers and customer_features: row-wise, nothing fitted, shared with batch scoring."""

import dagster as dg
import pandas as pd

from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.lib.features import build_features
from affluent_assets.lib.features import clean_customers as clean_extract
from affluent_assets.lib.schemas import clean_customers_schema, customer_features_schema

CLEAN_DESCRIPTIONS = {
    "customer_key": "Row identifier `<C_ID>-<source_row>`; unique although C_ID repeats",
    "source_file": "File (or demo generator) the row came from",
    "source_row": "1-based data row in that file (row 1 = first row under the header)",
    "c_seg": "Label: NORMAL or AFFLUENT",
}


@dg.asset(
    group_name="features",
    pool=DUCKDB_POOL,
    check_specs=[
        schema_check_spec("clean_customers", "snake_case columns, unique customer_key, typed.")
    ],
)
def clean_customers(raw_customers: pd.DataFrame):
    """The extract with SQL-friendly snake_case names (`Asset value` -> `asset_value`), tidy text,
    typed columns and `customer_key`, a row identifier that works although C_ID repeats."""
    source = str(raw_customers["source_file"].iloc[0]) if len(raw_customers) else "unknown"
    clean = clean_extract(raw_customers, source)
    clean = yield from validate_with_check(
        clean_customers_schema(require_label=True), clean, "clean_customers"
    )
    yield dg.Output(clean, metadata=table_metadata(clean, CLEAN_DESCRIPTIONS))


@dg.asset(
    group_name="features",
    pool=DUCKDB_POOL,
    check_specs=[
        schema_check_spec("customer_features", "Model inputs: typed, flags 0/1, one row per key.")
    ],
)
def customer_features(clean_customers: pd.DataFrame):
    """The model's inputs, one row per customer, computed from that row alone: cleaned age,
    loan flags as 0/1, explicit gap flags (missing deposits are themselves a signal)."""
    features = build_features(clean_customers)
    features = yield from validate_with_check(
        customer_features_schema(), features, "customer_features"
    )
    yield dg.Output(features, metadata=table_metadata(features))
