"""Reading the next chunk on a thread changes neither what the landing pass sees nor where a
reader's error surfaces."""

from types import SimpleNamespace

import pandas as pd
import pytest

from affluent_assets.lib.batch_threads import read_ahead


class Unreadable(Exception):
    pass


def chunks(count: int, fail_after: int | None = None, read: list | None = None):
    for i in range(count):
        if fail_after is not None and i == fail_after:
            raise Unreadable(f"chunk {i}")
        if read is not None:
            read.append(i)
        yield pd.DataFrame({"i": [i]})


def test_the_chunks_come_in_order():
    assert [int(c["i"].iloc[0]) for c in read_ahead(chunks(5))] == [0, 1, 2, 3, 4]


def test_a_reader_error_surfaces_after_the_chunks_before_it():
    seen = []
    with pytest.raises(Unreadable, match="chunk 2"):
        for chunk in read_ahead(chunks(5, fail_after=2)):
            seen.append(int(chunk["i"].iloc[0]))
    assert seen == [0, 1]


def test_stopping_early_reads_at_most_one_chunk_ahead():
    read: list[int] = []
    ahead = read_ahead(chunks(10, read=read))
    next(ahead)
    ahead.close()  # the caller stops (a missing column: every chunk would fail alike)
    assert read in ([0, 1], [0])


class Unexplainable(Exception):
    pass


def test_reasons_ahead_keep_the_order_and_raise_where_a_batch_fails(monkeypatch):
    """The numbers of the reasons are worked out one batch ahead on a thread: each batch gets
    its own, in order, and a failure surfaces at the batch it belongs to."""
    from affluent_assets.lib import batch_threads
    from affluent_assets.lib.scorer import Stopwatch

    def numbers(model, kept):
        if int(kept["i"].iloc[0]) == 3:
            raise Unexplainable("batch 3")
        return f"numbers of {int(kept['i'].iloc[0])}"

    monkeypatch.setattr(batch_threads, "top_reasons", numbers)
    batches = ((pd.DataFrame({"i": [i]}), i) for i in range(5))
    seen = []
    with pytest.raises(Unexplainable, match="batch 3"):
        scorer = SimpleNamespace(model=None)
        for kept, held, found in batch_threads.reasons_ahead(scorer, batches, Stopwatch()):
            seen.append((int(kept["i"].iloc[0]), held, found))
    assert seen == [(i, i, f"numbers of {i}") for i in range(3)]
