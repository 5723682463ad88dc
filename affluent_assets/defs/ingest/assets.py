"""raw_customers: the ETB extract as delivered, checked against the data contract."""

import dagster as dg

from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.defs.resources import ExtractSource
from affluent_assets.lib.data_quality import QualityFindings, quality_findings, quality_warnings
from affluent_assets.lib.extract_checks import ExtractError
from affluent_assets.lib.schemas import contract_frame, raw_extract_schema
from affluent_assets.names import QUALITY_CHECK

# Values the data contract itself documents (C_AGE 122 is the source system's placeholder for
# an unknown age; minors such as the rows at ages 2 and 12 hold accounts): counted and shown as
# info, never a warning, since every extract has them.
DOCUMENTED_PLACEHOLDERS = frozenset({"age_placeholder_122", "age_under_18"})


def quality_check_result(findings: QualityFindings, asset_key=None) -> dg.AssetCheckResult:
    """Non-blocking: unknown levels, implausible ages and the like warn; the contract's own
    placeholders are counted as info and do not make the check fail."""
    info = {n: c for n, c in findings.counts.items() if n in DOCUMENTED_PLACEHOLDERS}
    warnings = {n: c for n, c in findings.counts.items() if n not in DOCUMENTED_PLACEHOLDERS}
    flagged = {name: count for name, count in warnings.items() if count}
    described = ", ".join(f"{name} {count:,}" for name, count in flagged.items())
    noted = ", ".join(f"{name} {count:,}" for name, count in info.items() if count)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUALITY_CHECK,
        passed=not flagged,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"warnings: {described}" if flagged else "no warnings")
        + (f"; info (documented placeholders): {noted}" if noted else ""),
        metadata={
            "findings": sum(warnings.values()),
            "info": sum(info.values()),
            **{name: count for name, count in findings.counts.items()},
            "examples": dg.MetadataValue.json(findings.examples),
            # In words, for whoever handed in the file (`affluent score`, the page, the API).
            "warnings": dg.MetadataValue.json(
                quality_warnings(findings.counts, findings.examples, DOCUMENTED_PLACEHOLDERS)
            ),
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
