"""A contract violation as an HTTP answer: per failing column and check, the rows (positions in
the request, from 0) and how many, and never the values themselves."""

from __future__ import annotations

import pandas as pd

from affluent_assets.lib.validation import MAX_ROWS_NAMED, readable_check

MAX_LISTED = 50  # (column, check) pairs answered; more are counted


def violations(failures: pd.DataFrame) -> list[dict]:
    """pandera's failure cases (lib/validation.ContractViolation.failures), value-free."""
    found = []
    for (column, check), group in failures.groupby(["column", "check"], dropna=False, sort=False):
        rows = group["index"].dropna().astype("int64").sort_values().to_numpy()
        if check == "column_in_dataframe":
            # The failure case is the missing column's name: the contract's, not the request's.
            found.extend(
                {"column": str(name), "check": "missing column", "rows": [], "count": 0}
                for name in group["failure_case"]
            )
            continue
        found.append(
            {
                "column": None if pd.isna(column) else str(column),
                "check": readable_check(str(check)),
                "rows": rows[:MAX_ROWS_NAMED].tolist(),
                "count": int(len(rows)),
            }
        )
    return found[:MAX_LISTED]
