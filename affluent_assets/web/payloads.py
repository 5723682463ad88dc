"""Request bodies of the two inference protocols turned into a frame of contract rows, and scores
turned back into each protocol's answer. Every refusal names what is wrong with the request's
shape (a key, a column, a row) and never quotes a value from it: a request holds customer data,
and an error message travels to logs and screens that must not.

MLflow's scoring-server protocol: a JSON object with exactly one of `dataframe_split`,
`dataframe_records`, `instances` or `inputs`, or a CSV body. Open Inference Protocol v2: a JSON
object whose `inputs` are one tensor per contract column, columnar.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd

from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.scorer import SCORE_COLUMNS

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(SCALARS)
# The Open Inference Protocol's tensor types, and the one each contract column is declared as.
V2_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
              "FP16", "FP32", "FP64"}  # fmt: skip
V2_DATATYPES = V2_NUMERIC | {"BYTES"}
CONTRACT_DATATYPES = {"int": "INT64", "float": "FP64", "text": "BYTES"}
OUTPUT_DATATYPES = {
    "affluent_probability": "FP64",
    "flagged": "BOOL",
    "predicted_segment": "BYTES",
    "score_decile": "INT64",
    "expected_precision": "FP64",
    "expected_recall": "FP64",
    "reason_1": "BYTES",
    "reason_2": "BYTES",
    "reason_3": "BYTES",
    "model_version": "BYTES",
}
assert list(OUTPUT_DATATYPES) == SCORE_COLUMNS


class BadRequest(Exception):
    """A request that cannot be read as rows: `status` 400 (malformed), 413 (too large) or 415
    (unknown content type); `message` says what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        # The position says where; the text around it is never quoted.
        where = f" at character {error.pos}" if isinstance(error, json.JSONDecodeError) else ""
        raise BadRequest(400, f"the body is not valid JSON{where}") from None


Rows = dict[str, list | np.ndarray]  # column name -> one value per row, every column as long


def mlflow_rows(body: bytes, content_type: str) -> Rows:
    """The rows of an `/invocations` body, as MLflow's scoring server reads them, as columns."""
    if content_type == "text/csv":
        return _csv_rows(body)
    if content_type != "application/json":
        raise BadRequest(415, "send application/json (dataframe_split, dataframe_records, "
                         "instances or inputs) or text/csv")  # fmt: skip
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest(400, f"send a JSON object with one of {', '.join(MLFLOW_FORMATS)}")
    given = [key for key in MLFLOW_FORMATS if key in payload]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        raise BadRequest(400, f"send exactly one of {', '.join(MLFLOW_FORMATS)} (found: {found})")
    key = given[0]
    data = payload[key]
    if key == "dataframe_split":
        return _split_rows(data)
    if isinstance(data, dict):  # instances / inputs, columnar
        return _columns_rows(data, key)
    return _records_rows(data, key)


def row_count(rows: Rows) -> int:
    return len(next(iter(rows.values()))) if rows else 0


def _csv_rows(body: bytes) -> Rows:
    text_columns = {name: object for name, kind in RAW_COLUMNS.items() if kind == "text"}
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=text_columns, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise BadRequest(400, "the CSV body is empty: send a header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        raise BadRequest(400, "the CSV body cannot be read: send UTF-8 text, a header line "
                         "of contract column names and one line per row") from None  # fmt: skip
    return {str(name): frame[name].to_numpy() for name in frame.columns}


def _split_rows(data) -> Rows:
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        raise BadRequest(400, "dataframe_split needs 'columns' (a list of names) and 'data'")
    columns, rows = data["columns"], data.get("data")
    _check_names(columns, "dataframe_split.columns")
    if not isinstance(rows, list):
        raise BadRequest(400, "dataframe_split.data must be a list of rows")
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRequest(400, f"dataframe_split.data row {number} must be a list of "
                             f"{len(columns)} values, one per column")  # fmt: skip
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return _checked({name: list(cells) for name, cells in zip(columns, values, strict=True)})


def _records_rows(data, key: str) -> Rows:
    if not isinstance(data, list):
        raise BadRequest(400, f"{key} must be a list of rows (objects of column: value)")
    for number, row in enumerate(data):
        if not isinstance(row, dict):
            raise BadRequest(400, f"{key} row {number} must be an object of column: value")
    names = dict.fromkeys(name for row in data for name in row)  # in order of first mention
    return _checked({name: [row.get(name) for row in data] for name in names})


def _columns_rows(data: dict, key: str) -> Rows:
    _check_names(list(data), key)
    lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
    if -1 in lengths or len(lengths) > 1:
        raise BadRequest(400, f"{key} as columns: every column must be a list of equal length")
    return _checked(dict(data))


def _check_names(names: list, where: str) -> None:
    if not all(isinstance(name, str) for name in names):
        raise BadRequest(400, f"{where}: column names must be text")
    if len(set(names)) != len(names):
        raise BadRequest(400, f"{where}: a column is named twice")


def _checked(rows: Rows) -> Rows:
    """Rows whose cells are single values: a list or an object in a cell is no contract value."""
    for column, values in rows.items():
        if isinstance(values, np.ndarray) and values.dtype != object:
            continue  # numbers read from CSV
        if set(map(type, values)) <= _SCALAR_TYPES:  # the usual answer, at C speed
            continue
        nested = [i for i, v in enumerate(values) if not isinstance(v, SCALARS)]
        if nested:
            raise BadRequest(400, f"column {column!r}, row {nested[0]}: a cell must hold one "
                             "value (text, a number or null), not a list or an object")  # fmt: skip
    return rows


def v2_rows(payload: object) -> tuple[Rows, object, list[str] | None]:
    """The rows of a v2 infer request, its `id` and the outputs it asks for (None: all)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise BadRequest(400, "send a JSON object with 'inputs': one tensor per column")
    columns: dict[str, list] = {}
    for number, tensor in enumerate(payload["inputs"]):
        name, data = _v2_tensor(tensor, number)
        if name in columns:
            raise BadRequest(400, f"input {name!r} is given twice")
        columns[name] = data
    if len({len(data) for data in columns.values()}) > 1:
        raise BadRequest(400, "every input must hold the same number of rows")
    requested = payload.get("outputs")
    names = None
    if requested is not None:
        if not isinstance(requested, list) or not all(
            isinstance(o, dict) and o.get("name") in OUTPUT_DATATYPES for o in requested
        ):
            raise BadRequest(400, f"outputs: a list of {{'name': ...}}, names among "
                             f"{', '.join(OUTPUT_DATATYPES)}")  # fmt: skip
        names = [o["name"] for o in requested]
    return _checked(columns), payload.get("id"), names


def _v2_tensor(tensor, number: int) -> tuple[str, list]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise BadRequest(400, f"inputs[{number}] needs a 'name', 'shape', 'datatype' and 'data'")
    name, shape, datatype = tensor["name"], tensor.get("shape"), tensor.get("datatype")
    if datatype not in V2_DATATYPES:
        raise BadRequest(400, f"input {name!r}: datatype must be one of {sorted(V2_DATATYPES)}")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise BadRequest(400, f"input {name!r}: 'data' must be a list")
    if data and isinstance(data[0], list):  # row-major nesting of shape [n, 1]
        data = [cell[0] if isinstance(cell, list) and len(cell) == 1 else cell for cell in data]
    if not isinstance(shape, list) or not shape or math.prod(shape) != len(data):
        raise BadRequest(400, f"input {name!r}: 'shape' must be [rows] (or [rows, 1]) and "
                         "match the length of 'data'")  # fmt: skip
    return name, data


def records(scores: Rows) -> list[dict]:
    """One JSON object per scored row, NaN as null."""
    columns = {name: _jsonable(scores[name]) for name in ["c_id", *SCORE_COLUMNS]}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def v2_outputs(scores: Rows, names: list[str] | None) -> list[dict]:
    return [
        {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": [len(scores[name])],
         "data": _jsonable(scores[name])}
        for name in (names or SCORE_COLUMNS)
    ]  # fmt: skip


def _jsonable(values) -> list:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in array.tolist()]
    if array.dtype.kind in "iub":
        return array.tolist()
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
