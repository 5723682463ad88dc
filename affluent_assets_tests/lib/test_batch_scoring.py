"""Reading the next chunk on a thread changes neither what the landing pass sees nor where a
reader's error surfaces."""

import pandas as pd
import pytest

from affluent_assets.lib.batch_scoring import read_ahead


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
