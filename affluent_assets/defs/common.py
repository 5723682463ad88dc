"""Small Dagster helpers shared by the assets: schema checks with failure cases, previews."""

from collections.abc import Generator

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.validation import MAX_ROWS_NAMED, ContractViolation, validate_frame
from affluent_assets.names import SCHEMA_CHECK

PREVIEW_ROWS = 10
DUCKDB_POOL = "duckdb"  # one writer at a time per DuckDB file (see dagster.yaml)


def schema_check_spec(asset: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(SCHEMA_CHECK, asset=asset, blocking=True, description=description)


def validate_with_check(
    schema: pa.DataFrameSchema,
    frame: pd.DataFrame,
    source: str,
) -> Generator[dg.AssetCheckResult, None, pd.DataFrame]:
    """Validate before anything is written: yields the check result (with failure cases when it
    fails, then stops the step so the stored table stays as it was); returns the coerced frame.

    Use as `frame = yield from validate_with_check(...)` inside a generator asset."""
    try:
        valid = validate_frame(schema, frame, source)
    except ContractViolation as violation:
        cases = violation.failures.head(50 * MAX_ROWS_NAMED)
        metadata = {
            "source": source,
            "failure_count": len(violation.failures),
            "failure_cases": dg.MetadataValue.md(cases.astype(str).to_markdown(index=False)),
        }
        yield dg.AssetCheckResult(
            check_name=SCHEMA_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=str(violation),
            metadata=metadata,
        )
        raise dg.Failure(description=str(violation), metadata=metadata) from None
    yield dg.AssetCheckResult(
        check_name=SCHEMA_CHECK, passed=True, metadata={"rows": len(valid), "schema": schema.name}
    )
    return valid


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".4g"))


def column_schema(
    frame: pd.DataFrame, descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(c), type=str(t), description=descriptions.get(str(c)))
            for c, t in frame.dtypes.items()
        ]
    )


def table_metadata(frame: pd.DataFrame, descriptions: dict[str, str] | None = None) -> dict:
    """Row count, preview and column schema: what a person wants to see on every table."""
    return {
        "dagster/row_count": len(frame),
        "preview": preview(frame),
        "dagster/column_schema": column_schema(frame, descriptions),
    }
