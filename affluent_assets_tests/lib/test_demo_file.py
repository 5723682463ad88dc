"""write_demo_csv: a large contract-true CSV made chunk by chunk."""

from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.demo_data import write_demo_csv
from affluent_assets.lib.extract_io import read_extract
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.validation import validate_frame


def test_demo_csv_has_every_row_and_keeps_the_contract(tmp_path):
    path = write_demo_csv(tmp_path / "big.csv", rows=1_201, seed=3, chunk_rows=500)
    frame = read_extract(path)
    assert len(frame) == 1_201
    assert list(frame.columns) == list(RAW_COLUMNS)
    validate_frame(raw_extract_schema(), frame, path.name)  # raises if the contract breaks
    # Each chunk has its own seed: the second chunk is not a copy of the first.
    assert not frame.iloc[:500]["Asset value"].equals(frame.iloc[500:1000]["Asset value"])
