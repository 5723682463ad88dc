"""What the upload page and the API say about a batch, read from where the platform keeps it:
the Dagster instance (the batch's runs), the quarantine folder (its reason) and the lake (its
scores and ranked candidates). Nothing here scores or writes: the landing sensor's run is the one
way a file is scored. The longer queries are in web/sql/."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from affluent_assets.lib import lake, landing, warehouse
from affluent_assets.lib.estimates import ESTIMATE_COLUMNS
from affluent_assets.names import QUALITY_CHECK

_SCORES = dg.AssetKey("batch_scores")
_CANDIDATES = dg.AssetKey("batch_candidates")

WAITING, SCORING, SCORED, QUARANTINED, FAILED = (
    "waiting", "scoring", "scored", "quarantined", "failed",
)  # fmt: skip
_WAITING_RUNS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
}


@dataclass(frozen=True)
class Folders:
    landing: str
    quarantine: str
    lake: str


@dataclass
class BatchState:
    batch: str
    file: str
    status: str
    reason: str | None = None
    rows: int | None = None
    candidates: int | None = None
    model_version: str | None = None
    run_id: str | None = None
    updated_at: float | None = None
    # Data-quality warnings of the rows (scored all the same), in words.
    warnings: list[str] = field(default_factory=list)
    # The batch that holds this file's rows and list, when its content was scored before.
    same_content_as: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def batch_state(instance: dg.DagsterInstance, folders: Folders, key: str) -> BatchState | None:
    """The state of batch `key` (the landing file's batch key); None if nothing knows it. The
    newest run that scored it (alone or in a group) decides: a file rejected once and then
    fixed under the same name is scored."""
    run = latest_run(instance, key)
    # A run launched without the sensor's config (a partition materialized from the UI): the
    # file is the one in the landing folder.
    named = landing.run_batches(run.tags, run.run_config).get(key) if run else None
    file = named or _landing_file(folders, key)
    if file is None:
        return None
    state = BatchState(key, file, WAITING, run_id=run.run_id if run else None)
    if run is None:
        if not _in_folder(folders.landing, file):  # quarantined by a run since forgotten
            reason = quarantine_reason(folders.quarantine, file)
            state.status, state.reason = (QUARANTINED, reason) if reason else (WAITING, None)
        return state
    listed = [
        m
        for m in _events_of(instance, run.run_id, key, dg.DagsterEventType.ASSET_MATERIALIZATION)
        if m.asset_key == _CANDIDATES
    ]
    if run.status in _WAITING_RUNS:
        state.status = WAITING
    elif run.is_success or listed:  # in a group, a file's list is out before its run ends
        state.status = SCORED
        _add_scored(state, instance, folders.lake, run.run_id)
    elif run.status == dg.DagsterRunStatus.STARTED:
        state.status = SCORING
    else:
        message, quarantined_as = _failure(instance, run.run_id, key)
        if quarantined_as is not None:
            reason = quarantine_reason(folders.quarantine, Path(quarantined_as).name)
            state.status, state.reason = QUARANTINED, reason or message
        else:
            state.status, state.reason = FAILED, message
    record = instance.get_run_record_by_id(run.run_id)
    state.updated_at = record.update_timestamp.timestamp() if record else None
    return state


def latest_run(instance: dg.DagsterInstance, key: str) -> dg.DagsterRun | None:
    """The newest run that was to score batch `key`, alone or in a group of files."""
    planned = instance.get_latest_planned_materialization_info(_SCORES, key)
    if planned is not None:
        return instance.get_run_by_id(planned.run_id)
    runs = instance.get_runs(dg.RunsFilter(tags={landing.PARTITION_TAG: key}), limit=1)
    return runs[0] if runs else None


def _add_scored(state: BatchState, instance, lake_dir: str, run_id: str) -> None:
    """A scored batch's figures and warnings; for content scored before under another batch,
    that batch's (the file's rows and list are there)."""
    key = state.batch
    seen = _metadata(instance, run_id, key, dg.DagsterEventType.ASSET_OBSERVATION)
    holder = seen.get("duplicate_of")
    if holder is None:
        _add_results(state, lake_dir, key)
        state.warnings = _warnings(instance, run_id, key)
        state.reason = _metadata(
            instance, run_id, key, dg.DagsterEventType.ASSET_MATERIALIZATION
        ).get("replaced")  # a new version of the batch, with other content than it held
        return
    held = lake.batch_summary(lake_dir, str(holder)) or {}
    if held.get("content_hash") != seen.get("content_hash"):
        state.reason = (
            f"same content as batch {holder!r} when it was scored, but that batch has since "
            "been replaced by other content: hand in the file again to score it"
        )
        return
    state.same_content_as = str(holder)
    state.reason = f"same content as batch {holder!r}, already scored: its list is shown"
    _add_results(state, lake_dir, state.same_content_as)
    holder_run = latest_run(instance, state.same_content_as)
    state.warnings = (
        _warnings(instance, holder_run.run_id, state.same_content_as) if holder_run else []
    )


def _events_of(instance, run_id: str, key: str, kind: dg.DagsterEventType) -> list:
    """What the run's events of `kind` about batch `key` hold (a materialization, observation
    or check evaluation), first first: a run may score several batches."""
    held = []
    for record in instance.get_records_for_run(run_id, of_type=kind).records:
        data = getattr(record.event_log_entry.dagster_event, "event_specific_data", None)
        data = getattr(data, "asset_observation", None) or getattr(data, "materialization", data)
        if data is not None and getattr(data, "partition", None) == key:
            held.append(data)
    return held


def _metadata(instance, run_id: str, key: str, kind: dg.DagsterEventType) -> dict:
    """The metadata values of the run's first event of `kind` about batch `key`."""
    for data in _events_of(instance, run_id, key, kind):
        if getattr(data, "metadata", None) is not None:
            return {name: value.value for name, value in data.metadata.items()}
    return {}


def _warnings(instance, run_id: str, key: str) -> list[str]:
    for evaluation in _events_of(instance, run_id, key, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        if evaluation.check_name == QUALITY_CHECK and "warnings" in evaluation.metadata:
            return list(evaluation.metadata["warnings"].value)
    return []


def _in_folder(folder: str, file: str) -> bool:
    try:
        return landing.resolve_inside(folder, file).is_file()
    except landing.UnsafePath:
        return False


def _landing_file(folders: Folders, key: str) -> str | None:
    """The file of a batch that has no run yet: in the landing folder, or already quarantined."""
    for folder in (folders.landing, folders.quarantine):
        for name in landing.scan_landing(folder):
            if landing.batch_key_for(name) == key:
                return name
    return None


def list_batches(instance: dg.DagsterInstance, folders: Folders, limit: int = 50) -> list[dict]:
    """Files waiting in the landing folder, then batches by their newest run, with states."""
    keys: list[str] = []
    for run in instance.get_runs(dg.RunsFilter(job_name="landing_job"), limit=limit * 3):
        for key in landing.run_batches(run.tags, run.run_config):
            if key not in keys:
                keys.append(key)
    waiting = sorted({landing.batch_key_for(n) for n in landing.scan_landing(folders.landing)})
    ordered = [key for key in waiting if key not in keys] + keys
    states = [batch_state(instance, folders, key) for key in ordered[:limit]]
    return [state.to_dict() for state in states if state is not None]


def quarantine_reason(quarantine_dir: str, file: str) -> str | None:
    """The reason a file was quarantined (its reason file without the header lines)."""
    try:
        reason_file = landing.reason_file_for(landing.resolve_inside(quarantine_dir, file))
        text = reason_file.read_text(encoding="utf-8")
    except (OSError, landing.UnsafePath):
        return None
    return text.split("\n\n", 1)[-1].strip()


def _add_results(state: BatchState, lake_dir: str, key: str) -> None:
    scores = lake.batch_file(lake_dir, lake.SCORES, key)
    candidates = lake.batch_file(lake_dir, lake.CANDIDATES, key)
    if scores.exists():
        metadata = pq.ParquetFile(scores)
        state.rows = metadata.metadata.num_rows
        if state.rows:
            first = metadata.read_row_group(0, columns=["model_version"]).column(0)
            state.model_version = first[0].as_py()
    if candidates.exists():
        state.candidates = pq.ParquetFile(candidates).metadata.num_rows


def _failure(instance: dg.DagsterInstance, run_id: str, key: str) -> tuple[str, str | None]:
    """Why the run did not score batch `key`, and where it moved the file if the file was the
    reason; the run's own failure message when the run failed before it (no model, a crash)."""
    for record in instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records:
        event = record.event_log_entry.dagster_event
        if event is None or not event.message:
            continue
        failure = getattr(event.event_specific_data, "user_failure_data", None)
        failed = failure.metadata.get("failed_batches") if failure is not None else None
        mine = (failed.value if failed is not None else {}).get(key)
        if mine is not None:
            moved = mine.get("quarantined_as")
            return (f"{mine['problem']} (moved to {moved})" if moved else mine["problem"]), moved
        return event.message, None
    return "the run failed; see it in the Dagster UI", None


# Columns lists gained later: a batch landed before them reads them as missing (group: called).
_LATER_COLUMNS = {
    "group": "'campaign'",
    "estimated_precision": "null::double",
    "estimated_precision_low": "null::double",
    "estimated_precision_high": "null::double",
}


def _candidates_source(path) -> str:
    """The batch's candidate file as a relation with every column web/sql/ranked_candidates.sql
    shows."""
    present = set(pq.read_schema(path).names)
    missing = [f'{value} as "{name}"' for name, value in _LATER_COLUMNS.items()
               if name not in present]  # fmt: skip
    extra = "".join(f", {column}" for column in missing)
    return f"(select *{extra} from read_parquet(?))"


def _sql(name: str) -> str:
    """A query of web/sql/, beside this module: the reads of the lake that only the page and
    the API make."""
    return warehouse.sql(name, beside=__file__)


def _ranked(path) -> str:
    """The batch's ranked list (web/sql/ranked_candidates.sql over its file), in no order."""
    return _sql("ranked_candidates").format(source=_candidates_source(path))


def candidates_query(lake_dir: str, key: str, limit: int | None = None) -> tuple[str, list]:
    """SQL and parameters for a batch's ranked list (best first)."""
    path = lake.batch_file(lake_dir, lake.CANDIDATES, key)
    sql = _ranked(path) + " order by rank"
    params: list = [str(path)]
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    return sql, params


def top_candidates(lake_dir: str, key: str, limit: int = 20) -> list[dict]:
    sql, params = candidates_query(lake_dir, key, limit)
    with duckdb.connect() as con:
        return records(con.execute(sql, params).df())


def precision_curve(lake_dir: str, key: str, points: int = 100) -> list[dict]:
    """Expected precision (the holdout's) and the list's own estimate with its interval against
    how many customers are called, at up to `points` ranks."""
    path = lake.batch_file(lake_dir, lake.CANDIDATES, key)
    sql = _sql("precision_curve").format(ranked=_ranked(path))
    with duckdb.connect() as con:
        return records(con.execute(sql, [str(path), points]).df())


def list_estimates(lake_dir: str, key: str) -> list[dict]:
    """The batch's estimated precision and recall at the threshold and capacity cuts with their
    90% intervals, beside the holdout's (none for a batch landed before estimates existed)."""
    path = lake.batch_file(lake_dir, lake.ESTIMATES, key)
    if not path.exists():
        return []
    columns = [*ESTIMATE_COLUMNS, "model_version"]
    return records(pq.read_table(path, columns=columns).to_pandas())


def groups(lake_dir: str, key: str) -> dict:
    """How many of the batch's candidates are to be called and how many are held back."""
    path = lake.batch_file(lake_dir, lake.CANDIDATES, key)
    with duckdb.connect() as con:
        counts = dict(
            con.execute(
                f'select "group", count(*) from {_candidates_source(path)} group by all',
                [str(path)],
            ).fetchall()
        )
    total = sum(counts.values())
    return {
        "campaign": counts.get("campaign", 0),
        "control": counts.get("control", 0),
        "control_share": counts.get("control", 0) / total if total else 0.0,
    }


def records(frame) -> list[dict]:
    """Rows as JSON-safe dicts: a missing value (NaN) is None. A candidate scored above every
    holdout score has no expected precision: the holdout called no one that high."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
