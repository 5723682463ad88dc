"""The distinct levels of a text column and each row's code, worked out once per column.

A chunk's text columns are asked for their levels six times on the way to a score: by the
contract check, the data-quality findings (unknown levels, repeated rows), the cleaning, the
features, the prepared matrix and the drift counts. Each was a pass over Python strings (about
45 ms per 100k rows in all at 10M rows). `factorized` remembers its answer for as long as the
memory it was read from lives, and the cleaning and the features, which make their columns
from codes, hand the codes on with them (`remember`), so a chunk's text is factorized once.

Rule for callers: a column whose levels were asked for is not written to afterwards (the
arrays this module is handed from lib/features are made read-only to hold to it).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

# (address, rows, stride) of an object column -> (its owner, held weakly; codes; levels)
_KNOWN: dict[tuple[int, int, int], tuple[weakref.ref, np.ndarray, np.ndarray]] = {}


def factorized(values) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(values)`: each row's code and the distinct levels in order of appearance;
    a blank (None, NaN) is code -1 and no level. `values`: an object array or Series."""
    array = values.to_numpy() if isinstance(values, pd.Series) else values
    if not isinstance(array, np.ndarray) or array.dtype != object or array.ndim != 1:
        return pd.factorize(np.asarray(values, dtype=object))
    key, owner = _key(array), _owner(array)
    known = _KNOWN.get(key)
    if known is not None and known[0]() is owner:
        return known[1], known[2]
    codes, levels = pd.factorize(array)
    remember(array, codes, levels)
    return codes, levels


def remember(array: np.ndarray, codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Say that `array` (object, one dimension) factorizes to `codes` and `levels`; returns it.
    While its memory lives, `factorized` answers from here."""
    owner, key = _owner(array), _key(array)
    codes.flags.writeable = levels.flags.writeable = False  # shared by every caller
    _KNOWN[key] = (weakref.ref(owner, lambda _: _KNOWN.pop(key, None)), codes, levels)
    return array


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory `array` views (pandas hands out views of its blocks)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _key(array: np.ndarray) -> tuple[int, int, int]:
    return array.__array_interface__["data"][0], len(array), array.strides[0]
