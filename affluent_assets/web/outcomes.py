"""What the upload page and the API say about campaign outcome files, read from where the
platform keeps it: the outcomes folder (files not yet read, or read and kept), its quarantine
folder (rejected files and their reasons), the latest `model_outcomes` materialization (which
files it read, with their counts) and the warehouse table `model_outcomes` (the figures).
Nothing here reads an outcome file: the outcomes sensor's run is the one way a file is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from affluent_assets.lib import landing, outcome_files
from affluent_assets.lib.uplift import NO_CONTROL
from affluent_assets.lib.warehouse import table_exists
from affluent_assets.names import OUTCOME_FILES_READ, QINI_TABLE, UPLIFT_TABLE
from affluent_assets.web import batches

WAITING, READ, QUARANTINED = "waiting", "read", "quarantined"
ASSET = dg.AssetKey("model_outcomes")


class WarehouseBusy(RuntimeError):
    """The warehouse is held by a writer (a run) and cannot be read just now."""


@dataclass
class OutcomeFileState:
    file: str
    status: str
    detail: str | None = None
    updated_at: float | None = None

    def to_dict(self) -> dict:
        return {"file": self.file, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class LatestRead:
    """Which files the latest model_outcomes materialization read (name -> summary), and when."""

    read: dict[str, str]
    at: float | None


def latest_read(instance: dg.DagsterInstance) -> LatestRead:
    event = instance.get_latest_materialization_event(ASSET)
    if event is None or event.asset_materialization is None:
        return LatestRead({}, None)
    value = event.asset_materialization.metadata.get(OUTCOME_FILES_READ)
    read = dict(value.value) if isinstance(value, dg.JsonMetadataValue) else {}
    return LatestRead(read, event.timestamp)


def list_outcome_files(instance: dg.DagsterInstance, folder: str) -> list[dict]:
    """Every outcome file in the folder or its quarantine, newest first, with its state."""
    states = _states(latest_read(instance), folder)
    states.sort(key=lambda state: state.updated_at or 0, reverse=True)
    return [state.to_dict() for state in states]


def outcome_file_state(
    instance: dg.DagsterInstance, folder: str, file: str
) -> OutcomeFileState | None:
    """The state of one outcome file; None if neither folder holds it (or the name is unsafe)."""
    try:
        landing.resolve_inside(folder, file)
    except landing.UnsafePath:
        return None
    found = [s for s in _states(latest_read(instance), folder, only=file) if s.file == file]
    return found[0] if found else None


def _states(latest: LatestRead, folder: str, only: str | None = None) -> list[OutcomeFileState]:
    """A file in the folder is `read` when the latest materialization named it read and came
    after its last change, else `waiting` (a changed file is read again). A quarantined file
    keeps its reason; a file of the same name back in the folder (fixed, dropped again) wins."""
    quarantine = str(Path(folder) / outcome_files.QUARANTINE)
    states: dict[str, OutcomeFileState] = {}
    for name, signature in landing.scan_landing(quarantine).items():
        if only is not None and name != only:
            continue
        reason = batches.quarantine_reason(quarantine, name)
        if reason is not None:
            states[name] = OutcomeFileState(name, QUARANTINED, reason, signature.mtime_ns / 1e9)
    for name, signature in landing.scan_landing(folder).items():
        if only is not None and name != only:
            continue
        mtime = signature.mtime_ns / 1e9
        summary = latest.read.get(name)
        if summary is not None and latest.at is not None and latest.at >= mtime:
            states[name] = OutcomeFileState(name, READ, summary, mtime)
        else:
            states[name] = OutcomeFileState(name, WAITING, None, mtime)
    return list(states.values())


def figures(warehouse: str) -> list[dict]:
    """The rows of the warehouse table `model_outcomes` (none before its first run)."""
    return _rows(warehouse, "model_outcomes", "source, model_version")


def uplift(warehouse: str) -> dict:
    """The campaign's effect against its control group (`campaign_uplift`, overall and by score
    decile) and the Qini curve's points; `note` says why there are none."""
    table = _rows(warehouse, UPLIFT_TABLE, "model_version, scope = 'overall' desc, scope")
    qini = _rows(warehouse, QINI_TABLE, "model_version, share_called")
    return {"uplift": table, "qini": qini, "note": None if table else NO_CONTROL}


def _rows(warehouse: str, table: str, order: str) -> list[dict]:
    if not Path(warehouse).exists():
        return []
    try:
        with duckdb.connect(warehouse, read_only=True) as con:
            if not table_exists(con, table):
                return []
            frame = con.execute(f"select * from {table} order by {order}").df()
    except duckdb.IOException as error:  # a run holds the write lock
        raise WarehouseBusy(f"the warehouse is being written; try again ({error})") from None
    return batches.records(frame)
