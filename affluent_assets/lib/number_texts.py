"""Numbers as a candidate's reasons show them (`1,234.50`, `4`), many at once: a compiled
kernel writes their digits into one Arrow text column.

A 10M-row list's reasons show about five million values, most of them balances that hardly
repeat; Python's float formatting of each was most of the time the list took after its scores.
The kernel gives the same text as `f"{x:,.0f}"` for whole numbers and `f"{x:,.2f}"` for the
others, and leaves to Python what it cannot do exactly: Python rounds a float's exact value to
the cent, and `x * 100` rounds the same way except within a hair of a half cent (the product's
own error stays under 1e-4 cent below 2**32): those, numbers of 2**32 or more and numbers that
are not finite are formatted by Python itself.

Imported only for many rows (numba's import costs a process 0.3 s; lib/kernels.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from affluent_assets.lib.kernels import numba

LIMIT = 2.0**32  # at or above: Python formats it
HALF_CENT_MARGIN = 1e-3  # in cents: far wider than the product's rounding error below LIMIT
WIDEST = 20  # bytes of the longest text the kernel writes: -4,294,967,295.99


def number_texts(values: np.ndarray, by_python: Callable[[float], str]) -> list[str]:
    """The text of each number; `by_python(x)` for the numbers the kernel leaves to Python."""
    values = np.ascontiguousarray(values, dtype="float64")
    data = np.empty(len(values) * WIDEST, dtype=np.uint8)
    offsets = np.empty(len(values) + 1, dtype=np.int32)
    itself = np.empty(len(values), dtype=np.bool_)
    _write_numbers(values, data, offsets, itself)
    text = pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    out = text.to_numpy(zero_copy_only=False)
    out[itself] = [by_python(x) for x in values[itself].tolist()]
    return out.tolist()


@numba.njit(cache=True, nogil=True)
def _write_numbers(values, data, offsets, itself):
    digits = np.empty(WIDEST, dtype=np.uint8)
    at = 0
    for i in range(len(values)):
        offsets[i] = at
        value = values[i]
        size = abs(value)
        itself[i] = not (size < LIMIT)  # NaN and infinities too
        if itself[i]:
            continue
        cents = -1  # a whole number: no decimals
        units = np.int64(size)
        if units != size:
            scaled = size * 100.0
            if abs(scaled - math.floor(scaled) - 0.5) < HALF_CENT_MARGIN:
                itself[i] = True
                continue
            rounded = np.int64(np.rint(scaled))
            units, cents = rounded // 100, rounded % 100
        if math.copysign(1.0, value) < 0:  # Python keeps the sign of -0 and of -0.004
            data[at] = 45  # -
            at += 1
        count = 0
        while True:
            digits[count] = 48 + units % 10
            units //= 10
            count += 1
            if units == 0:
                break
        for k in range(count - 1, -1, -1):
            data[at] = digits[k]
            at += 1
            if k > 0 and k % 3 == 0:
                data[at] = 44  # ,
                at += 1
        if cents >= 0:
            data[at] = 46  # .
            data[at + 1] = 48 + cents // 10
            data[at + 2] = 48 + cents % 10
            at += 3
    offsets[len(values)] = at
