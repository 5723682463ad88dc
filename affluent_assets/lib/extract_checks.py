"""What makes a file not an ETB extract, found before any of its values is read: bytes that are
another format than its suffix says, or a header that is not the contract's. The Excel, CSV and
Parquet readers share these checks, so a bad header reads the same in every format.

ExtractError lives here, below every reader, because each of them raises it: its message names
the file and, where it applies, the column and the rows, so a person can fix the file without
reading a stack trace.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from affluent_assets.lib.contract import RAW_COLUMNS

# C0 control characters other than tab, LF and CR, and DEL: never part of a value in the extract.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# How far down the `Data` sheet a header displaced by title rows is looked for.
HEADER_SEARCH_ROWS = 20


class ExtractError(ValueError):
    """A file that cannot be read as an ETB extract; the message says why, for a person."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


# What a file's first bytes say it is (magic numbers), for a file whose suffix says otherwise.
_SIGNATURES = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and hand in the file inside"),
    (b"BZh", "a bzip2-compressed file", "decompress it and hand in the file inside"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it and hand in the file inside"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it and hand in the file inside"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it and hand in the file inside"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one too)",
     "if it is a workbook, name it .xlsx; otherwise extract the file inside"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Office file (.xls)",
     "save it from Excel as .xlsx or CSV UTF-8"),
    (b"%PDF", "a PDF document", "export the table as CSV UTF-8 or .xlsx"),
    (b"\xff\xfe", "UTF-16 text", "save it as CSV UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as CSV UTF-8"),
)  # fmt: skip
_EXPECTED = {".csv": b"", ".parquet": b"PAR1", ".xlsx": b"PK\x03\x04", ".xlsm": b"PK\x03\x04"}
SNIFF_BYTES = 4096


def not_what_suffix_says(suffix: str, head: bytes) -> str | None:
    """Why a file's bytes are not what its suffix says (compressed, another format, binary),
    or None. Only formats the bytes name for sure are described; the readers judge the rest."""
    expected = _EXPECTED.get(suffix)
    if expected is None or (expected and head.startswith(expected)):
        return None
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            kind = _KINDS[suffix]
            return f"this is {what}, not {kind} (it starts with bytes {_hex(magic)}): {fix}"
    if suffix == ".csv":
        control = sum(byte < 9 or 13 < byte < 32 for byte in head)
        if control * 10 > len(head):  # a NUL in a cell is the contract's to report, not this
            return (
                f"this is binary data, not CSV text ({control} of its first {len(head)} bytes "
                "are control characters): export the table as CSV UTF-8"
            )
        return None
    if _looks_like_text(head):
        start = head[:40].decode("utf-8", "replace").splitlines()[0]
        return (
            f"this is text (it starts {start!r}), not {_KINDS[suffix]}: "
            "if it is a CSV file, name it .csv"
        )
    return None


_KINDS = {
    ".csv": "CSV text",
    ".parquet": "a Parquet file",
    ".xlsx": "an Excel workbook",
    ".xlsm": "an Excel workbook",
}


def _hex(data: bytes) -> str:
    return " ".join(f"{byte:02x}" for byte in data)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
    return not CONTROL_CHARACTERS.search(head[:1024].decode("utf-8", "replace"))


def _normal_name(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().casefold()


def _check_near_names(path: Path, columns: list[str]) -> None:
    """Contract columns present only under a name that differs in case, spaces or underscores:
    say what was found and what is expected, not that the column is missing."""
    found = {_normal_name(c): c for c in columns}
    near = [
        (found[_normal_name(expected)], expected)
        for expected in RAW_COLUMNS
        if expected not in columns and _normal_name(expected) in found
    ]
    if near:
        named = ", ".join(f"{was!r} where {expected!r} is expected" for was, expected in near)
        raise ExtractError(
            path,
            f"column names differ from the contract's only in case, spaces or underscores: "
            f"{named}; rename them exactly as the contract spells them",
        )


def check_header(path: Path, columns: list[str]) -> None:
    blank = [
        i + 1
        for i, c in enumerate(columns)
        if str(c).strip() == "" or str(c).startswith("Unnamed:")
    ]
    if blank:
        raise ExtractError(path, f"header has blank column names at positions {blank}")
    control = [(i + 1, str(c)) for i, c in enumerate(columns) if CONTROL_CHARACTERS.search(str(c))]
    if control:
        named = ", ".join(f"{name!r} at position {i}" for i, name in control)
        raise ExtractError(path, f"header has control characters in column names: {named}")
    repeated = sorted(name for name, count in Counter(map(str, columns)).items() if count > 1)
    if repeated:
        raise ExtractError(path, f"duplicated header: column(s) {repeated} appear more than once")
    _check_near_names(path, [str(c) for c in columns])


def contract_names(row: list) -> int:
    """How many cells of a row are contract column names: how a header row is told from the
    title rows above it."""
    return sum(str(cell).strip() in RAW_COLUMNS for cell in row)
