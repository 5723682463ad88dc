"""Score one extract file of any size in chunks: read, check against the contract, clean,
featurize and score each chunk with the training code, append it to a staged Parquet file, and
keep the candidates' features aside for their reasons. Memory holds one chunk, whatever the
file's size; nothing is published here (see lib/lake.py), so a file that breaks the contract
on its last row leaves nothing behind.

`score_extract` is the scoring pass; `explain_candidates` adds reasons and expected precision
to the candidates it kept. Both are plain functions a notebook can call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from affluent_assets.lib import batch_tables, quick_check
from affluent_assets.lib.batch_tables import (
    CANDIDATES_SCHEMA,
    BatchIdentity,
)
from affluent_assets.lib.batch_threads import StagedWriter, read_ahead, reasons_ahead
from affluent_assets.lib.champion import ScoringModel
from affluent_assets.lib.contract import POSITIVE
from affluent_assets.lib.control_group import CAMPAIGN, CONTROL, ControlPolicy, assign_groups
from affluent_assets.lib.data_quality import QualityFindings, quality_findings
from affluent_assets.lib.drift import DriftAccumulator, DriftReference
from affluent_assets.lib.estimates import ListCurve
from affluent_assets.lib.estimates import list_estimates as estimate_list
from affluent_assets.lib.evaluation import LIST_MIN_CALLED
from affluent_assets.lib.extract_csv import TypedReadFailed
from affluent_assets.lib.extract_io import DEFAULT_CHUNK_ROWS, Extract
from affluent_assets.lib.levels import factorized
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.scorer import REASON_COLUMNS, Stopwatch, explain_rows, score_rows
from affluent_assets.lib.validation import MAX_ROWS_NAMED, ContractViolation, describe_failures

Progress = Callable[[str, int], None]  # (phase, rows done in that phase)
EXPLAIN_ROWS = 50_000


@dataclass
class ScoredBatch:
    """The outcome of a scoring pass: staged files and what was learned on the way."""

    content_hash: str
    rows: int
    predicted_affluent: int
    candidates: int
    scores_file: Path
    kept_file: Path
    quality: QualityFindings
    drift: pd.DataFrame | None
    typed_read: bool
    stopwatch: Stopwatch


class _Failures:
    """Contract failures of every chunk, rows counted in the whole file; at most
    MAX_ROWS_NAMED cases kept per column and check, the rest only counted."""

    def __init__(self) -> None:
        self.cases: list[pd.DataFrame] = []
        self.totals: dict[tuple, int] = {}
        self.structural: set[tuple] = set()

    def add(self, violation: ContractViolation) -> None:
        cases = violation.failures
        for (column, check), group in cases.groupby(["column", "check"], dropna=False):
            key = (column, check)
            if group["index"].isna().all():  # a missing column fails every chunk alike
                if key in self.structural:
                    continue
                self.structural.add(key)
                self.cases.append(group)
                continue
            seen = self.totals.get(key, 0)
            self.totals[key] = seen + len(group)
            if seen < MAX_ROWS_NAMED:
                self.cases.append(group.head(MAX_ROWS_NAMED - seen))

    def __bool__(self) -> bool:
        return bool(self.cases)

    def only_structural(self) -> bool:
        return not self.totals

    def violation(self, source: str) -> ContractViolation:
        cases = pd.concat(self.cases, ignore_index=True)
        return ContractViolation(source, describe_failures(cases, self.totals), cases)


def score_extract(
    extract: Extract,
    digest: str,
    identity: BatchIdentity,
    scorer: ScoringModel,
    staging: Path,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    drift_reference: DriftReference | None = None,
    progress: Progress | None = None,
    clock: Stopwatch | None = None,
) -> ScoredBatch:
    """Score every row of an open extract (whose sha256 is `digest`) into
    `staging/scores.parquet`, keeping the candidates' features in
    `staging/candidates_features.parquet`. Raises ExtractError (or ContractViolation, naming
    every bad column and rows numbered in the whole file) when the file cannot be read or
    breaks the contract; then nothing staged is of use. Each stage's seconds are added to
    `clock` (the caller's, so its own stages sit in the same breakdown)."""
    clock = clock if clock is not None else Stopwatch()
    job = _ScoringJob(
        digest, identity, scorer, staging, chunk_rows, drift_reference, progress, clock
    )
    with clock.stage("validate"):
        nul = extract.has_nul()
    if nul:
        # The typed reader would fail on a NUL in a number only where it lies (perhaps the last
        # row), after scoring every row before it: check the whole file first, then score.
        with clock.stage("validate"):
            _check_only(extract, chunk_rows)
        return _scoring_pass(extract, False, job)
    try:
        return _scoring_pass(extract, True, job)
    except TypedReadFailed:
        # A value the typed reader cannot parse: pandas' inference lets the contract name
        # every bad row (or accepts what pandas reads, e.g. padded numbers).
        return _scoring_pass(extract, False, job)


@dataclass(frozen=True)
class _ScoringJob:
    """What every chunk of one file is scored with and where it goes: one pass or two (a
    typed read that failed is read again untyped) share it."""

    digest: str
    identity: BatchIdentity
    scorer: ScoringModel
    staging: Path
    chunk_rows: int
    drift_reference: DriftReference | None
    progress: Progress | None
    clock: Stopwatch


def _check_only(extract: Extract, chunk_rows: int) -> None:
    """Every chunk checked against the contract, nothing scored; ContractViolation if any
    chunk breaks it."""
    schema = raw_extract_schema(require_label=False)
    failures = _Failures()
    for raw in extract.chunks(chunk_rows, typed=False):
        try:
            quick_check.validated(raw, schema, extract.path.name)
        except ContractViolation as violation:
            failures.add(violation)
            if failures.only_structural():
                break
    if failures:
        raise failures.violation(extract.path.name)


def _scoring_pass(extract: Extract, typed: bool, job: _ScoringJob) -> ScoredBatch:
    schema = raw_extract_schema(require_label=False)
    failures = _Failures()
    quality = QualityFindings()
    reference, clock = job.drift_reference, job.clock
    drift = DriftAccumulator(reference) if reference is not None else None
    scores_file = job.staging / "scores.parquet"
    kept_file = job.staging / "candidates_features.parquet"
    rows = predicted = kept = 0
    with _staged_writer(scores_file, kept_file) as staged:
        chunks = read_ahead(extract.chunks(job.chunk_rows, typed=typed))
        while True:
            with clock.stage("read"):
                raw = next(chunks, None)
            if raw is None:
                break
            with clock.stage("validate"):
                try:
                    valid = quick_check.validated(raw, schema, extract.path.name)
                except ContractViolation as violation:
                    failures.add(violation)
                    if failures.only_structural():
                        break  # a missing column: every chunk would say the same
                    continue
                finally:
                    del raw  # validated in place: `valid` is the same frame
                if failures:
                    continue  # keep checking, to name every bad row, but score no more
                quality.merge(quality_findings(valid))
            # Only this chunk's tables outlive the call: the frames it was built from are freed
            # before the next chunk is read, so memory holds one chunk (plus one being written).
            scores, candidates, affluent = _score_chunk(
                valid, rows + 1, extract.path.name, job, drift
            )
            del valid
            with clock.stage("write"):
                staged.append(scores, candidates)
            rows += scores.num_rows
            predicted += affluent
            kept += 0 if candidates is None else candidates.num_rows
            del scores, candidates
            if job.progress is not None:
                job.progress("score", rows)
    if failures:
        raise failures.violation(extract.path.name)
    return ScoredBatch(
        content_hash=job.digest,
        rows=rows,
        predicted_affluent=predicted,
        candidates=kept,
        scores_file=scores_file,
        kept_file=kept_file,
        quality=quality,
        drift=drift.report() if drift is not None and drift.rows else None,
        typed_read=typed,
        stopwatch=clock,
    )


def _staged_writer(scores_file: Path, kept_file: Path) -> StagedWriter:
    """The pass's two files: the scores, and the candidates' model inputs (read back once,
    whole, by explain_candidates: no statistics to skip row groups by)."""
    return StagedWriter(
        (scores_file, batch_tables.SCORES_SCHEMA, batch_tables.SCORES_WRITING),
        (kept_file, batch_tables.KEPT_SCHEMA, {"write_statistics": False}),
    )


def _score_chunk(
    valid: pd.DataFrame,
    first_row: int,
    source: str,
    job: _ScoringJob,
    drift: DriftAccumulator | None,
) -> tuple[pa.Table, pa.Table | None, int]:
    """One validated chunk -> (its scores table, its candidates' table or None, how many were
    predicted AFFLUENT)."""
    # The one scorer (lib/scorer.py); reasons wait for explain_candidates, candidates only.
    clock = job.clock
    scored = score_rows(job.scorer, valid, source, first_row, explain=False, clock=clock)
    clean, features, scores = scored.clean, scored.features, scored.scores
    if drift is not None:
        with clock.stage("features"):
            drift.add(features)
    with clock.stage("write"):
        keep = _is_candidate(clean, scores)
        affluent = int(scores["flagged"].sum())
        candidates = batch_tables.kept_table(features, clean, scores, keep) if keep.any() else None
        table = batch_tables.scores_table(
            clean, scores, job.digest, job.identity, job.scorer.registered
        )
        return table, candidates, affluent


def _is_candidate(clean: pd.DataFrame, scores: pd.DataFrame) -> np.ndarray:
    """Predicted AFFLUENT and not already labelled AFFLUENT (a file may carry no label)."""
    codes, levels = factorized(clean["c_seg"])  # the label's levels, known from cleaning
    labelled_affluent = np.isin(codes, np.flatnonzero(np.asarray(levels, dtype=object) == POSITIVE))
    return scores["flagged"].to_numpy() & ~labelled_affluent


def explain_candidates(
    batch: ScoredBatch,
    identity: BatchIdentity,
    scorer: ScoringModel,
    out: Path,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    control: ControlPolicy | None = None,
) -> int:
    """Write the batch's candidates to `out`, each with its three reasons (the same SHAP-based
    texts as the main list), the expected precision and recall of calling everyone scored at
    or above it (the champion's holdout curve), the list's own estimate of that precision, and
    its group (a seeded control share held back; default: the settings). Reasons cost far more
    per row than scores, so they are computed for the candidates only. A row that repeats an
    earlier row exactly is not listed again. Returns the number of candidates."""
    clock = batch.stopwatch
    done = 0
    # A row repeated exactly is one customer: called once, at its first row.
    repeats = batch.quality.repeated_rows() + 1
    # Smaller batches than scoring: contributions hold a float per feature and row.
    batches = _fresh_batches(batch.kept_file, min(chunk_rows, EXPLAIN_ROWS), repeats)
    # What needs the whole list is worked out on a thread while the first batches' reasons are
    # (their numbers do not need it; their texts and table wait for it). Written on a thread,
    # as the scores are: the next batch's texts are made meanwhile.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="whole-list") as pool,
        StagedWriter((out, CANDIDATES_SCHEMA, batch_tables.CANDIDATES_WRITING)) as writer,
    ):
        whole = pool.submit(_whole_list, batch.kept_file, identity.batch_key, control, scorer)
        for kept, positions, numbers in reasons_ahead(scorer, batches, clock):
            with clock.stage("control_group"):  # the wait for the thread
                held_back, own = whole.result()
            # The one scorer's explanation (lib/scorer.py), as an API answer gets it.
            explained = explain_rows(
                scorer, kept, kept["affluent_probability"], clock, reasons=numbers
            )
            reasons = explained[REASON_COLUMNS]
            with clock.stage("expected_precision"):
                expected = pd.concat(
                    [explained[["expected_precision", "expected_recall"]],
                     own.at(kept["affluent_probability"])], axis=1,
                )  # fmt: skip
                groups = np.where(held_back[positions], CONTROL, CAMPAIGN)
            with clock.stage("write"):
                writer.append(
                    batch_tables.candidates_table(
                        kept, reasons, expected, groups, batch.content_hash, identity,
                        scorer.registered,
                    )
                )  # fmt: skip
            done += len(kept)
            if progress is not None:
                progress("explain", done)
        whole.result()  # a list of none fresh still has its whole-list errors raised
    return done


def _fresh_batches(
    kept_file: Path, rows: int, repeats: np.ndarray
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The kept candidates in batches of `rows`, each with its rows' positions in the kept
    file (where their control draw is), without rows that repeat an earlier row (`repeats`:
    their data row numbers)."""
    offset = 0
    for record_batch in pq.ParquetFile(kept_file).iter_batches(batch_size=rows):
        kept = record_batch.to_pandas()
        positions = np.arange(offset, offset + len(kept))
        offset += len(kept)
        if len(repeats):
            fresh = ~kept["source_row"].isin(repeats).to_numpy()
            kept, positions = kept[fresh].reset_index(drop=True), positions[fresh]
        if not kept.empty:
            yield kept, positions


def _whole_list(
    kept_file: Path, batch_key: str, control: ControlPolicy | None, scorer: ScoringModel
) -> tuple[np.ndarray, ListCurve]:
    """What needs the whole list before any candidate is written: who is held back (True, in
    the kept file's row order; the draw is stratified over the list's deciles) and the list's
    own precision curve. Two columns of the candidates only, so memory stays small for any
    file."""
    probability = pq.read_table(kept_file, columns=["affluent_probability"]).column(0).to_numpy()
    keys = pq.read_table(kept_file, columns=["customer_key"]).column(0)
    keys = keys.to_numpy(zero_copy_only=False)
    held = assign_groups(keys, probability, control or ControlPolicy.from_settings(), batch_key)
    # Millions of key strings (about 80 bytes each) are let go before the curve's arrays are
    # made: at the start of a list of 3M candidates they were most of the process's peak.
    del keys
    held = held == CONTROL
    return held, ListCurve.from_scores(probability, scorer.curve, min_called=LIST_MIN_CALLED)


def estimate_batch(
    scores_file: Path, identity: BatchIdentity, scorer: ScoringModel, out: Path
) -> pd.DataFrame:
    """The batch's estimates at the threshold and the capacity cuts over all its rows (its label,
    when it has one, is what they are checked against in model_outcomes), beside the holdout's;
    written to `out` as the lake's `batch_estimates` table."""
    scores = pq.read_table(scores_file, columns=["affluent_probability"]).column(0).to_numpy()
    model = scorer.registered
    table = estimate_list(scores, model.threshold, scorer.curve, min_called=LIST_MIN_CALLED)
    pq.write_table(batch_tables.estimates_table(table, identity, model), out)
    return table
