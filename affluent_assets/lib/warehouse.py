"""DuckDB tables: whole-table replacement in one transaction, so a failed or killed write
leaves the previous contents as they were; and the one loader of the warehouse's SQL files, so
its views and macros can be read, diffed and highlighted as SQL rather than Python strings."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd


@cache
def sql(name: str, beside: str = __file__) -> str:
    """The text of `sql/<name>.sql` in the folder of the module file `beside` (by default this
    one's, lib/): each file holds one statement, named for what it creates. Read once per
    process; the files ship inside the package (pyproject's package-data). A name is a plain
    file name, never a path, so nothing outside those folders is read as SQL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not an SQL file name: {name!r}")
    return (Path(beside).parent / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def quote_identifier(name: str) -> str:
    """A DuckDB identifier in double quotes (file-derived names can hold anything)."""
    return '"' + name.replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 refuses register() and other work on a connection whose
    # last result was not fetched to the end.
    found = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'main' and table_name = ?",
        [table],
    ).fetchall()
    return bool(found and found[0][0])


def relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views in the main schema."""
    found = con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in found}


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame):
    """`frame` visible to SQL as `name` for the block."""
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


@contextmanager
def transaction_over(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame):
    """`frame` visible as `incoming_frame` inside one transaction: all of the block or none."""
    with registered(con, "incoming_frame", frame):
        try:
            con.execute("begin transaction")
            yield
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """The table becomes exactly `frame` (columns may change); readers see old or new, not half."""
    with transaction_over(con, frame):
        con.execute(
            f"create or replace table {quote_identifier(table)} as select * from incoming_frame"
        )


def read_table(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: list | None = None
) -> pd.DataFrame:
    sql = f"select * from {quote_identifier(table)}" + (f" where {where}" if where else "")
    return con.execute(sql, params or []).df()
