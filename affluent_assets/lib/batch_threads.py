"""The threads of a batch's passes, each a plain helper: the next chunk read while this one is
scored, the scored chunks written while the next is scored, and the next batch's reasons'
numbers worked out while this one's texts are written. Each overlaps work that releases the
GIL (Arrow's reading, Parquet's encoding, the SHAP kernel) with Python on the caller's thread;
memory holds at most one item more than without the thread, and a thread's error is raised
where the caller would have met it without the thread."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from affluent_assets.lib.champion import ScoringModel
from affluent_assets.lib.reasons import TopReasons, top_reasons
from affluent_assets.lib.scorer import Stopwatch


def read_ahead(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The chunks of `chunks`, the next one read on a thread while the caller scores this one
    (Arrow's CSV parsing and Parquet decoding release the GIL): one chunk more in memory. A
    reader's error is raised where the caller asks for that chunk, as without the thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk
            del chunk  # not held while the caller waits for the next one


class StagedWriter:
    """Appends tables to their Parquet files (`files`: path, schema and writer options each) on
    a background thread (Parquet encoding releases the GIL), so writing one chunk overlaps
    working out the next. At most one chunk waits to be written, so memory stays at about two
    chunks."""

    def __init__(self, *files: tuple[Path, pa.Schema, dict]):
        self.writers = [
            pq.ParquetWriter(path, schema, **options) for path, schema, options in files
        ]
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staged-writer")
        self.pending: Future | None = None

    def append(self, *tables: pa.Table | None) -> None:
        """One table per file, in the files' order (None: nothing for that file this time)."""
        self.wait()
        self.pending = self.pool.submit(self._write, tables)

    def _write(self, tables: tuple[pa.Table | None, ...]) -> None:
        for writer, table in zip(self.writers, tables, strict=True):
            if table is not None:
                writer.write_table(table)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()  # a failed write fails the pass

    def __enter__(self) -> StagedWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
            for writer in self.writers:
                writer.close()


def reasons_ahead(
    scorer: ScoringModel, batches: Iterator[tuple[pd.DataFrame, np.ndarray]], clock: Stopwatch
) -> Iterator[tuple[pd.DataFrame, np.ndarray, TopReasons]]:
    """Each batch (candidates, and what the caller keeps beside them) with the numbers of its
    reasons (lib/reasons.top_reasons), worked out on a thread one batch ahead: the SHAP kernel
    releases the GIL, so the next batch's values are computed while this one's texts and
    table are written on one core."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasons-ahead") as pool:
        ahead = None
        for kept, beside in batches:
            numbers = pool.submit(top_reasons, scorer.model, kept)
            if ahead is not None:
                yield _settled(ahead, clock)
            ahead = (kept, beside, numbers)
        if ahead is not None:
            yield _settled(ahead, clock)


def _settled(ahead: tuple, clock: Stopwatch) -> tuple[pd.DataFrame, np.ndarray, TopReasons]:
    kept, beside, numbers = ahead
    with clock.stage("reasons"):  # the wait for the thread
        return kept, beside, numbers.result()
