"""The names several parts of the platform must spell alike: run tags, asset check names,
warehouse tables and metadata keys that `web`, `cli`, `defs` and the alerts all read or write.

They live here, not in the `defs` modules that define the assets, so that a reader of a name
need not import Dagster definitions: `affluent serve` (the web app) imports no `defs` module,
and the alerts do not import three asset modules to learn what their checks are called. This
module imports nothing; keep it that way.
"""

# Run tags
LANDING_FILE_TAG = "affluent/landing_file"  # the landing file a run scores
# The champion version its sensor saw: a landing run scores with it, from the local cache when
# it is there (lib/champion.py), without importing MLflow or opening its store.
CHAMPION_VERSION_TAG = "affluent/champion_version"

# Asset check names
SCHEMA_CHECK = "matches_schema"  # blocking: rows match the table's schema
QUALITY_CHECK = "data_quality"  # warning: unknown levels, placeholder ages
DRIFT_CHECK = "feature_drift"  # warning: a landed batch's features drifted
ESTIMATE_CHECK = "estimate_vs_holdout"  # warning: a batch's own estimate parts from the holdout's
PROMOTION_CHECK = "challenger_vs_champion"  # blocking: the newly trained model may be promoted
OUTCOME_CHECK = "realized_precision"  # warning: realized precision below the holdout's
CALIBRATION_CHECK = "calibration"  # warning: realized precision outside the estimate's interval
OUTCOME_FILES_CHECK = "outcome_files"  # warning: an outcome file was quarantined

# Warehouse tables written beside model_outcomes
UPLIFT_TABLE, QINI_TABLE = "campaign_uplift", "campaign_qini"

# model_outcomes metadata: file name -> summary of what was read (for the upload page)
OUTCOME_FILES_READ = "outcome_files_read"
