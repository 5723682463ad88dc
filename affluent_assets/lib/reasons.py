"""Reasons a person can read: the features that push each customer's score up the most, with
their values and pushes, e.g. `NUM_PRD = 4 (+0.81)`. The numbers (`top_reasons`: SHAP values,
the costly part) and the texts (`reason_texts`: formatting, one core) are separate steps, so a
batch can work out the next batch's numbers while it writes this one's texts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from affluent_assets.lib.features import MODEL_FEATURES, SMALL_ROWS
from affluent_assets.lib.prepared import Columns, row_count
from affluent_assets.lib.scoring import DISPLAY_NAMES, REASON_COUNT, contribution_columns
from affluent_assets.lib.training import CalibratedModel


def reason_codes(
    model: CalibratedModel,
    features: pd.DataFrame,
    count: int = REASON_COUNT,
    matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """The `count` features that push each customer's score up the most, as text a person can
    read, e.g. `NUM_PRD = 4 (+0.81)` (see `feature_contributions` for the units). Only
    contributions above zero count as reasons; fewer than `count` leaves the rest blank."""
    reasons = reason_columns(model, features, count, matrix)
    return pd.DataFrame(reasons, index=features.index, dtype=object)


def reason_columns(
    model: CalibratedModel,
    features: Columns,
    count: int = REASON_COUNT,
    matrix: np.ndarray | None = None,
) -> dict[str, list]:
    """`reason_codes` as lists, from a feature frame or a dict of its columns."""
    return reason_texts(top_reasons(model, features, count, matrix), features, count)


@dataclass(frozen=True)
class TopReasons:
    """Each row's `count` largest contributions: `feature` holds indexes into MODEL_FEATURES
    (-1 where the model has fewer features), `push` the contributions (NaN there)."""

    feature: np.ndarray  # rows x count, int
    push: np.ndarray  # rows x count, float64


def top_reasons(
    model: CalibratedModel,
    features: Columns,
    count: int = REASON_COUNT,
    matrix: np.ndarray | None = None,
) -> TopReasons:
    """The numbers behind the reasons, without their texts: the costly part (the SHAP values),
    which a landed batch works out for its next batch of candidates on a thread while it writes
    this one's texts (lib/batch_threads.reasons_ahead)."""
    rows = row_count(features)
    feature = np.full((rows, count), -1, dtype="int64")
    push = np.full((rows, count), np.nan)
    if rows == 0:
        return TopReasons(feature, push)
    columns, values, _ = contribution_columns(model, features, matrix, base=False)
    if rows <= SMALL_ROWS:  # a request's rows: sorting each is cheap, numba's import is not
        top = np.argsort(-values, axis=1, kind="stable")[:, :count]
    else:  # a list's batch: the SHAP thread's longest step after the kernel was this sort
        from affluent_assets.lib.kernels import largest_columns

        top = largest_columns(values, count)
    feature[:, : top.shape[1]] = np.asarray([MODEL_FEATURES.index(c) for c in columns])[top]
    push[:, : top.shape[1]] = np.take_along_axis(values, top, axis=1)
    return TopReasons(feature, push)


def reason_texts(
    reasons: TopReasons, features: Columns, count: int = REASON_COUNT
) -> dict[str, list]:
    """`reason_1`..: per row, its feature's contract name and value and the push, e.g.
    `NUM_PRD = 4 (+0.81)`; None where the push is not above zero."""
    rows = len(reasons.feature)
    texts: dict[str, list] = {}
    for rank in range(count):
        chosen, push = reasons.feature[:, rank], reasons.push[:, rank]
        pushes = _push_texts(push)  # None where the push is not above zero: no reason
        # Each row's value of its chosen feature as text, feature by feature: formatting is
        # the work, and a column's values are formatted alike.
        values = np.full(rows, None, dtype=object)
        for j in np.unique(chosen[chosen >= 0]).tolist():
            where = np.flatnonzero((chosen == j) & (push > 0))
            name = MODEL_FEATURES[j]
            label = DISPLAY_NAMES.get(name, name)
            shown = zip(_texts(features[name], where), pushes[where].tolist(), strict=True)
            values[where] = [f"{label} = {text} ({up})" for text, up in shown]
        texts[f"reason_{rank + 1}"] = values.tolist()
    return texts


def _push_texts(push: np.ndarray) -> np.ndarray:
    """`f"{push:+.2f}"` of each push above zero, None elsewhere; on many rows each distinct
    cent is formatted once. Python rounds a float's exact value, and `push * 100` rounds the
    same way except within a hair of a half cent: the few pushes there (and any that is not
    finite, or too large for cents to be exact) are formatted by Python itself."""
    above = push > 0
    out = np.full(len(push), None, dtype=object)
    if len(push) <= SMALL_ROWS:  # a request's rows: the table would cost more than the rows
        out[above] = [f"{p:+.2f}" for p in push[above].tolist()]
        return out
    shown = push[above]
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = shown * 100
        # Beyond 2**52 cents a float holds no fraction for rint to round as Python does.
        itself = ~(np.abs(scaled) < 2**52) | (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    cents, inverse = np.unique(np.rint(np.where(itself, 0.0, scaled)), return_inverse=True)
    table = [f"+{c // 100}.{c % 100:02d}" for c in cents.astype("int64").tolist()]
    texts = np.array(table, dtype=object)[inverse.reshape(-1)]
    texts[itself] = [f"{p:+.2f}" for p in shown[itself].tolist()]
    out[above] = texts
    return out


def _texts(column, rows: np.ndarray) -> list[str]:
    """`_readable` of the column's values at `rows`; numbers without asking each one's type."""
    values = np.asarray(column)[rows]
    if values.dtype.kind != "f":
        return [_readable(value) for value in values.tolist()]
    negative_zero = (values == 0) & np.signbit(values)  # equal to 0 for np.unique, not in text
    if len(values) > SMALL_ROWS and not negative_zero.any():
        # Counts and codes repeat (NUM_PRD has a few values in a million rows): each distinct
        # number is formatted once. Balances hardly repeat, and are formatted row by row.
        distinct, inverse = np.unique(values, return_inverse=True)
        if len(distinct) * 2 <= len(values):
            return np.array([_number_text(v) for v in distinct.tolist()], dtype=object)[
                inverse.reshape(-1)
            ].tolist()
        from affluent_assets.lib.number_texts import number_texts  # numba: many rows only

        return number_texts(values, _number_text)
    return [_number_text(value) for value in values.tolist()]


def _number_text(number: float) -> str:
    if number != number:
        return "blank"
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"


def _readable(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "blank"
    if isinstance(value, (int, float, np.number)):
        return _number_text(float(value))
    return str(value)
