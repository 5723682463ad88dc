"""What the compiled tree kernels (lib/tree_shap.py, lib/tree_predict.py) share: numba, with a
cache folder it can write, and the split of many rows over the cores.

Imported only where many rows are scored or explained: numba costs a process about 0.3 s to
import, more than a small landing file's whole prediction.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _writable_numba_cache() -> None:
    """numba keeps compiled kernels beside this file, or in the user's cache; an image that
    runs read-only or as an arbitrary user has neither, so it gets a folder in the temporary
    directory (per user) unless NUMBA_CACHE_DIR says where."""
    if "NUMBA_CACHE_DIR" in os.environ or os.access(os.path.dirname(__file__), os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"numba-{os.getuid()}")


_writable_numba_cache()
import numba  # noqa: E402, F401  (reads NUMBA_CACHE_DIR when imported; the kernels' import)

PARALLEL_ROWS = 20_000  # below this, one thread: starting more costs more than it saves


def row_ranges(rows: int) -> list[slice]:
    """Disjoint, contiguous ranges of rows, one per core the rows are worth."""
    threads = min(os.cpu_count() or 1, max(1, rows // PARALLEL_ROWS))
    edges = np.linspace(0, rows, threads + 1).astype("int64")
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def over_cores(work: Callable[[slice], None], rows: int) -> None:
    """`work(rows)` for each range of `row_ranges`, on a thread each when there are several
    (the kernels release the GIL and write disjoint rows)."""
    parts = row_ranges(rows)
    if len(parts) == 1:
        work(parts[0])
        return
    with ThreadPoolExecutor(len(parts), thread_name_prefix="tree-kernel") as pool:
        list(pool.map(work, parts))


def largest_columns(values: np.ndarray, count: int) -> np.ndarray:
    """Per row, the columns of its `count` largest values, largest first: the first `count`
    columns of `np.argsort(-values, axis=1, kind="stable")` (ties: the earlier column first;
    NaN after every number), without sorting every row's columns to keep a few."""
    values = np.ascontiguousarray(values, dtype="float64")
    out = np.empty((len(values), min(count, values.shape[1])), dtype="int64")
    _largest(values, out)
    return out


@numba.njit(cache=True, nogil=True)
def _largest(values, out):
    count = out.shape[1]
    for row in range(values.shape[0]):
        kept = 0
        for column in range(values.shape[1]):
            value = values[row, column]
            at = kept  # after every kept column that goes before this one
            while at > 0 and _goes_before(value, values[row, out[row, at - 1]]):
                at -= 1
            if at < count:
                for k in range(min(kept, count - 1), at, -1):
                    out[row, k] = out[row, k - 1]
                out[row, at] = column
                kept = min(kept + 1, count)


@numba.njit(cache=True, inline="always")
def _goes_before(value, other):
    if value != value:  # NaN
        return False
    return other != other or value > other
