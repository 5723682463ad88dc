"""raw_customers: the ETB extract as delivered, checked against the data contract."""

import dagster as dg

from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.defs.resources import ExtractSource
from affluent_assets.lib.extract_io import ExtractError
from affluent_assets.lib.schemas import (
    QualityFindings,
    contract_frame,
    quality_findings,
    raw_extract_schema,
)

QUALITY_CHECK = "data_quality"


def quality_check_result(findings: QualityFindings, asset_key=None) -> dg.AssetCheckResult:
    """Non-blocking: unknown levels, placeholder ages and the like are counted, not rejected."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUALITY_CHECK,
        passed=findings.total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "findings": findings.total,
            **{name: count for name, count in findings.counts.items()},
            "examples": dg.MetadataValue.json(findings.examples),
        },
    )


@dg.asset(
    group_name="ingest",
    pool=DUCKDB_POOL,
    check_specs=[
        schema_check_spec(
            "raw_customers",
            "The data contract: 30 columns, numeric types, labels, no negative counts.",
        ),
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset="raw_customers",
            description="Unknown levels, placeholder ages (warn).",
        ),
    ],
)
def raw_customers(context: dg.AssetExecutionContext, extract: ExtractSource):
    """The ETB customer extract as delivered (30 contract columns, `Asset value` with its space),
    or seeded demo data when no extract is present. A file that breaks the contract stops the
    run with the file, columns and rows named; the stored table is left as it was."""
    try:
        frame, source = extract.load()
    except ExtractError as error:
        raise dg.Failure(description=str(error), metadata={"source": str(error.path)}) from None
    context.log.info(f"read {len(frame)} rows from {source}")
    raw = yield from validate_with_check(raw_extract_schema(require_label=True), frame, source)
    yield quality_check_result(quality_findings(raw))
    raw = contract_frame(raw).assign(source_file=source)
    yield dg.Output(raw, metadata={"source": source, **table_metadata(raw)})
