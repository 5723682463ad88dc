"""The Arrow tables a landing batch is stored as: the schemas of the lake's files and the
builders that turn one chunk's frames into them. Every stored row says which batch, file and
run it came from and which model version scored it (`BatchIdentity`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from affluent_assets.lib.contract import NEGATIVE, POSITIVE
from affluent_assets.lib.features import CATEGORICAL_FEATURES, MODEL_FEATURES, arrow_row_keys
from affluent_assets.lib.levels import factorized
from affluent_assets.lib.registry import RegisteredModel
from affluent_assets.lib.scoring import REASON_COUNT

_TEXT = pa.string()
# The list's own estimate of calling down to each candidate (lib/estimates.ListCurve).
ESTIMATED_COLUMNS = ("estimated_precision", "estimated_precision_low", "estimated_precision_high")
_BATCH_FIELDS = [
    pa.field("batch_key", _TEXT),
    pa.field("source_file", _TEXT),
    pa.field("content_hash", _TEXT),
    pa.field("customer_key", _TEXT),
    pa.field("c_id", pa.int64()),
    pa.field("source_row", pa.int64()),
]
_MODEL_FIELDS = [
    pa.field("threshold", pa.float64()),
    pa.field("model_name", _TEXT),
    pa.field("model_version", _TEXT),
    pa.field("run_id", _TEXT),
    pa.field("scored_at", pa.timestamp("us")),
]
SCORES_SCHEMA = pa.schema(
    [
        *_BATCH_FIELDS,
        pa.field("c_seg", _TEXT),
        pa.field("affluent_probability", pa.float64()),
        pa.field("score_decile", pa.int64()),
        pa.field("predicted_segment", _TEXT),
        *_MODEL_FIELDS,
    ]
)
# How the scores' Parquet file (the lake's, renamed into place) is written. A dictionary
# only where values repeat (a unique key would be tried and dropped), and min/max statistics
# only where a query can skip row groups by them: keys and C_IDs are spread over every row
# group, and their statistics cost a third of the writing.
_SPREAD = ("customer_key", "c_id", "source_row", "affluent_probability")  # nearly unique
SCORES_WRITING = {
    "use_dictionary": [name for name in SCORES_SCHEMA.names if name not in _SPREAD],
    "write_statistics": [name for name in SCORES_SCHEMA.names if name not in _SPREAD[:2]],
}
CANDIDATES_SCHEMA = pa.schema(
    [
        *_BATCH_FIELDS,
        pa.field("affluent_probability", pa.float64()),
        pa.field("score_decile", pa.int64()),
        pa.field("expected_precision", pa.float64()),
        pa.field("expected_recall", pa.float64()),
        *[pa.field(name, pa.float64()) for name in ESTIMATED_COLUMNS],
        pa.field("group", _TEXT),
        *[pa.field(f"reason_{i + 1}", _TEXT) for i in range(REASON_COUNT)],
        *_MODEL_FIELDS,
    ]
)
# The candidates' file: its reasons and keys hardly repeat (see SCORES_WRITING).
_UNIQUE_CANDIDATE_COLUMNS = (*_SPREAD, *(f"reason_{i + 1}" for i in range(REASON_COUNT)))
CANDIDATES_WRITING = {
    "use_dictionary": [n for n in CANDIDATES_SCHEMA.names if n not in _UNIQUE_CANDIDATE_COLUMNS],
    "write_statistics": [
        n
        for n in CANDIDATES_SCHEMA.names
        if n not in _UNIQUE_CANDIDATE_COLUMNS[:2] and not n.startswith("reason_")
    ],
}
# A batch's estimates at the threshold and capacity cuts (lib/estimates.list_estimates).
ESTIMATES_SCHEMA = pa.schema(
    [
        pa.field("batch_key", _TEXT),
        pa.field("policy", _TEXT),
        pa.field("setting", _TEXT),
        pa.field("score_cut", pa.float64()),
        pa.field("flagged", pa.int64()),
        *[
            pa.field(name, pa.float64())
            for name in (
                "estimated_precision",
                "precision_low",
                "precision_high",
                "estimated_recall",
                "recall_low",
                "recall_high",
                "holdout_precision",
                "holdout_recall",
            )
        ],  # fmt: skip
        *_MODEL_FIELDS,
    ]
)
KEPT_SCHEMA = pa.schema(
    [
        pa.field("customer_key", _TEXT),
        pa.field("c_id", pa.int64()),
        pa.field("source_row", pa.int64()),
        pa.field("affluent_probability", pa.float64()),
        pa.field("score_decile", pa.int64()),
        *[
            pa.field(name, _TEXT if name in CATEGORICAL_FEATURES else pa.float64())
            for name in MODEL_FEATURES
        ],
    ]
)


@dataclass(frozen=True)
class BatchIdentity:
    """What every stored row of a batch says about where it came from and who scored it."""

    batch_key: str
    source_file: str
    run_id: str
    scored_at: datetime


@functools.lru_cache(maxsize=32)  # a file's columns at two sizes, scores and list: a few MB
def _constant(value, rows: int, type_: pa.DataType) -> pa.Array:
    """A column of one value. Arrow arrays are immutable, and a file's chunks are of one size
    with the same batch, file and model: each column is made once per file, not per chunk."""
    return pa.repeat(pa.scalar(value, type_), rows)


def _model_columns(rows: int, identity: BatchIdentity, model: RegisteredModel) -> dict:
    return {
        "threshold": _constant(float(model.threshold), rows, pa.float64()),
        "model_name": _constant(model.name, rows, _TEXT),
        "model_version": _constant(str(model.version), rows, _TEXT),
        "run_id": _constant(identity.run_id, rows, _TEXT),
        "scored_at": _constant(identity.scored_at, rows, pa.timestamp("us")),
    }


def _batch_columns(rows: int, identity: BatchIdentity, digest: str) -> dict:
    return {
        "batch_key": _constant(identity.batch_key, rows, _TEXT),
        "source_file": _constant(identity.source_file, rows, _TEXT),
        "content_hash": _constant(digest, rows, _TEXT),
    }


def scores_table(clean, scores, digest, identity, model) -> pa.Table:
    """A chunk's scores. Its text is made in Arrow from what the strings were made from (the
    key from C_ID and row, the segments from their codes): converting a Python string per row
    cost more than the rest of the table."""
    rows = len(clean)
    c_id, source_row = clean["c_id"].to_numpy(), clean["source_row"].to_numpy()
    affluent = scores["flagged"].to_numpy()
    columns = {
        **_batch_columns(rows, identity, digest),
        "customer_key": arrow_row_keys(c_id, source_row),
        "c_id": pa.array(c_id, pa.int64()),
        "source_row": pa.array(source_row, pa.int64()),
        "c_seg": _text_of_codes(*factorized(clean["c_seg"])),
        "affluent_probability": pa.array(scores["affluent_probability"].to_numpy()),
        "score_decile": pa.array(scores["score_decile"].to_numpy(), pa.int64()),
        "predicted_segment": pc.if_else(pa.array(affluent), POSITIVE, NEGATIVE),
        **_model_columns(rows, identity, model),
    }
    return pa.Table.from_pydict(columns, schema=SCORES_SCHEMA)


def _text_of_codes(codes: np.ndarray, levels: np.ndarray) -> pa.Array:
    """Text from factorized codes (lib/levels; -1 is a blank)."""
    indices = pa.array(codes, pa.int32(), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(levels, _TEXT)).cast(_TEXT)


def kept_table(features, clean, scores, keep: np.ndarray) -> pa.Table:
    """The candidates' identity, score and model inputs, for `explain_candidates`. Text made in
    Arrow, as in `scores_table`: the key from C_ID and row, the levels from their codes."""
    c_id, source_row = clean["c_id"].to_numpy()[keep], clean["source_row"].to_numpy()[keep]
    columns = {
        "customer_key": arrow_row_keys(c_id, source_row),
        "c_id": c_id,
        "source_row": source_row,
        "affluent_probability": scores["affluent_probability"].to_numpy()[keep],
        "score_decile": scores["score_decile"].to_numpy()[keep],
    }
    for name in MODEL_FEATURES:
        if name in CATEGORICAL_FEATURES:
            codes, levels = factorized(features[name])
            columns[name] = _text_of_codes(codes[keep], levels)
        else:
            columns[name] = features[name].to_numpy()[keep]
    return pa.Table.from_arrays(
        [_arrow(columns[f.name], f.type) for f in KEPT_SCHEMA], schema=KEPT_SCHEMA
    )


def _arrow(values, type_: pa.DataType) -> pa.Array:
    """An Arrow column of `values` (NaN as a blank, as pandas means it)."""
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, type_, from_pandas=True)


def candidates_table(kept, reasons, expected, groups, content_hash, identity, model) -> pa.Table:
    """`expected`: the holdout's and the list's own figures per candidate; `groups`: campaign
    or control (lib/control_group)."""
    rows = len(kept)
    columns = {
        **_batch_columns(rows, identity, content_hash),
        **{
            name: pa.array(kept[name].to_numpy(), SCORES_SCHEMA.field(name).type)
            for name in (
                "customer_key",
                "c_id",
                "source_row",
                "affluent_probability",
                "score_decile",
            )
        },
        "expected_precision": pa.array(expected["expected_precision"].to_numpy(), pa.float64()),
        "expected_recall": pa.array(expected["expected_recall"].to_numpy(), pa.float64()),
        **{name: pa.array(expected[name].to_numpy(), pa.float64()) for name in ESTIMATED_COLUMNS},
        "group": pa.array(np.asarray(groups, dtype=object), _TEXT),
        **{
            name: pa.array(reasons[name].to_numpy(dtype=object), _TEXT, from_pandas=True)
            for name in reasons.columns
        },
        **_model_columns(rows, identity, model),
    }
    return pa.Table.from_pydict(columns, schema=CANDIDATES_SCHEMA)


def estimates_table(estimates, identity: BatchIdentity, model: RegisteredModel) -> pa.Table:
    rows = len(estimates)
    columns = {
        "batch_key": _constant(identity.batch_key, rows, _TEXT),
        **{
            name: pa.array(estimates[name].to_numpy(), ESTIMATES_SCHEMA.field(name).type)
            for name in ESTIMATES_SCHEMA.names
            if name in estimates
        },
        **_model_columns(rows, identity, model),
    }
    return pa.Table.from_pydict(columns, schema=ESTIMATES_SCHEMA)
