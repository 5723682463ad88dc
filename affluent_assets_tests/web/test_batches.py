"""What the page reads from the lake: the ranked list and its precision curve, JSON-safe."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from affluent_assets.lib import batch_tables, lake
from affluent_assets.web.batches import precision_curve, top_candidates


def test_a_candidate_above_every_holdout_score_has_no_expected_precision(tmp_path):
    rows = 7
    columns = {field.name: pa.nulls(rows, field.type) for field in batch_tables.CANDIDATES_SCHEMA}
    columns["customer_key"] = pa.array([f"{i}-{i}" for i in range(rows)])
    columns["affluent_probability"] = pa.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5])
    # The top score is above every holdout score: nobody was called that high on the holdout.
    columns["expected_precision"] = pa.array([float("nan"), 0.9, 0.8, 0.7, 0.6, 0.55, 0.5])
    columns["reason_1"] = pa.array(["Asset value = 1 (+1.00)"] * rows)
    path = lake.batch_file(tmp_path, lake.CANDIDATES, "b.csv")
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table(columns, schema=batch_tables.CANDIDATES_SCHEMA), path)

    top = top_candidates(str(tmp_path), "b.csv", 3)
    assert [row["rank"] for row in top] == [1, 2, 3]
    assert top[0]["expected_precision"] is None and top[1]["expected_precision"] == 0.9
    curve = precision_curve(str(tmp_path), "b.csv", points=3)
    assert curve[-1]["called"] == 7 and curve[-1]["expected_precision"] == 0.5
    json.dumps({"top": top, "curve": curve}, allow_nan=False)  # what the API sends
