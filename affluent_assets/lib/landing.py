"""The landing folder: which files are there, when one is ready to read, and what happens to a
bad one. Plain functions (no Dagster) used by the landing sensor and the batch-scoring assets.

Exactly-once rules, in order:
- a tick only lists and stats files; a file is identified by its name, size and mtime;
- a file is ready when two consecutive ticks saw the same size and mtime (still-growing files
  wait); its run key is `<batch key>:<size>:<mtime_ns>`, so it runs once per version;
- the batch key comes from the file name, made safe for partitions, paths and SQL: a batch is
  a place (this folder and a name), and a file of that name landing again is a new version of
  that batch, which replaces its rows and says so (its earlier list stays in the history);
- the run hashes the content; content already scored under another batch adds no rows, and
  the batch that holds them is named.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from affluent_assets.names import LANDING_FILE_TAG

LANDING_SUFFIXES = (".csv", ".xlsx", ".parquet")
CURSOR_VERSION = 1
MAX_KEY_LENGTH = 120
REASON_SUFFIX = ".reason.txt"
# Where uploads are written before they are renamed into the folder (lib/uploads.py).
UPLOAD_STAGING = ".uploads"
PARTITION_TAG = "dagster/partition"  # Dagster's tag on a run of one partition
NAME_MAX_BYTES = 255  # a file name's limit on Linux, macOS and Windows file systems
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class UnsafePath(ValueError):
    """A name that would resolve outside the folder it belongs to."""


@dataclass(frozen=True)
class FileSignature:
    """What a tick may know about a file without reading it."""

    name: str
    size: int
    mtime_ns: int

    @property
    def batch_key(self) -> str:
        return batch_key_for(self.name)

    @property
    def run_key(self) -> str:
        return f"{self.batch_key}:{self.size}:{self.mtime_ns}"

    def stamp(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass
class LandingCursor:
    """`scored`: files already requested (name -> [size, mtime_ns]). `pending`: files seen once
    at that size and mtime, waiting for a second tick to confirm they stopped changing.
    `ignored`: entries of the folder that are not scored, already reported in the log."""

    scored: dict[str, list[int]] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def serialize(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "scored": self.scored,
                "pending": self.pending,
                "ignored": self.ignored,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def deserialize(cls, text: str | None) -> LandingCursor:
        """An empty cursor for None, an empty string or a cursor this code cannot read."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return cls()
        if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
            return cls()
        return cls(
            scored={str(k): [int(x) for x in v] for k, v in data.get("scored", {}).items()},
            pending={str(k): [int(x) for x in v] for k, v in data.get("pending", {}).items()},
            ignored=[str(name) for name in data.get("ignored", [])],
        )


@dataclass
class TickPlan:
    """What one tick decided: files to score now, files still settling, files gone."""

    ready: list[FileSignature]
    settling: list[FileSignature]
    unchanged: list[FileSignature]
    removed: list[str]
    cursor: LandingCursor


def batch_key_for(file_name: str) -> str:
    """A partition key from a file name: only `[A-Za-z0-9_.-]`, no `..`, no leading dot or dash.
    When the name had to change, a short hash of the original keeps two names from colliding
    (`my file.csv` -> `my_file.csv-3f2a9c1b`, distinct from `my_file.csv`)."""
    safe = _UNSAFE.sub("_", file_name)
    safe = re.sub(r"\.{2,}", "_", safe).lstrip(".-_") or "file"
    if safe == file_name and len(safe) <= MAX_KEY_LENGTH:
        return safe
    digest = hashlib.sha256(file_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{safe[:MAX_KEY_LENGTH]}-{digest}"


def batch_key_for_path(path: str | Path, landing_dir: str | Path) -> str:
    """The batch of a file scored where it lies (`affluent score PATH`). In the landing folder it
    is the sensor's key for the name, so both ways of scoring a file agree. Anywhere else the
    key also carries a hash of the folder: `a/report.csv` and `b/report.csv` are two batches,
    while scoring `a/report.csv` again (say, fixed) is the same batch and replaces it."""
    path = Path(path).resolve()
    key = batch_key_for(path.name)
    if path.parent == Path(landing_dir).resolve():
        return key
    folder = str(path.parent).encode("utf-8", "surrogateescape")
    return f"{key}-{hashlib.sha256(folder).hexdigest()[:8]}"


def is_landing_name(name: str) -> bool:
    """A file the sensor considers: a known suffix, not hidden, not an Office lock file."""
    return name.lower().endswith(LANDING_SUFFIXES) and not name.startswith((".", "~$"))


def resolve_inside(folder: str | Path, name: str) -> Path:
    """`folder/name` as an absolute path, refusing anything that would leave `folder` (a name
    with a separator, `..`, or a symlink pointing elsewhere)."""
    root = Path(folder).resolve()
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UnsafePath(f"{name!r} is not a plain file name")
    path = (root / name).resolve()
    if path.parent != root:
        raise UnsafePath(f"{name!r} resolves outside {root}")
    return path


def scan_landing(folder: str | Path) -> dict[str, FileSignature]:
    """Name -> signature of each landing file directly in `folder` (stat only, never read)."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    found: dict[str, FileSignature] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if not is_landing_name(entry.name):
                continue
            try:
                resolve_inside(root, entry.name)
                if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat()
            except (OSError, UnsafePath):
                continue  # vanished between listing and stat, or a link out of the folder
            found[entry.name] = FileSignature(entry.name, stat.st_size, stat.st_mtime_ns)
    return found


def ignored_entries(folder: str | Path) -> dict[str, str]:
    """Name -> why it is not scored, for every entry of `folder` that `scan_landing` skips, so
    that no file is passed over without a word."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    ignored: dict[str, str] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            reason = _why_ignored(entry)
            if reason:
                ignored[entry.name] = reason
    return ignored


def _why_ignored(entry: os.DirEntry) -> str | None:
    name = entry.name
    if name == UPLOAD_STAGING:
        return None  # uploads in progress: they land by rename when complete
    try:
        if entry.is_symlink():
            return "a symbolic link: copy the file itself into the folder"
        if entry.is_dir(follow_symlinks=False):
            return "a folder, not a file"
        if not entry.is_file(follow_symlinks=False):
            return "not a regular file"
    except OSError:
        return None  # vanished while listing
    if name.startswith("~$"):
        return "an Office lock file (the workbook is open somewhere)"
    if name.startswith("."):
        return "a hidden name (starts with '.'): rename it without the leading dot"
    if not name.lower().endswith(LANDING_SUFFIXES):
        suffix = Path(name).suffix or "no suffix"
        return f"unsupported file type ({suffix}); expected {', '.join(LANDING_SUFFIXES)}"
    return None


def plan_tick(
    cursor: LandingCursor, files: dict[str, FileSignature], quiet_since_ns: int | None = None
) -> TickPlan:
    """Compare this tick's listing with the cursor. A file is ready when the previous tick saw it
    with the same size and mtime (and it was not already scored at that size and mtime); an
    empty file waits like a growing one until it has been stable for a tick.

    With `quiet_since_ns` (now less one tick), a file not empty whose mtime is older than that
    is ready when first seen: it has not been written to for a tick, which is what a second
    look would have shown. A file moved in whole (an upload renamed into place, `mv` from a
    staging folder) is then requested a tick sooner; one still being written has a fresh mtime
    and waits as before."""
    ready, settling, unchanged = [], [], []
    scored = {n: s for n, s in cursor.scored.items() if n in files}
    pending: dict[str, list[int]] = {}
    for name in sorted(files):
        signature = files[name]
        stamp = signature.stamp()
        quiet = (
            quiet_since_ns is not None
            and signature.size > 0
            and signature.mtime_ns <= quiet_since_ns
        )
        if scored.get(name) == stamp:
            unchanged.append(signature)
        elif cursor.pending.get(name) == stamp or quiet:
            ready.append(signature)
            scored[name] = stamp
        else:
            settling.append(signature)
            pending[name] = stamp
    removed = sorted((set(cursor.scored) | set(cursor.pending)) - set(files))
    cursor = LandingCursor(scored, pending, list(cursor.ignored))
    return TickPlan(ready, settling, unchanged, removed, cursor)


def hold_back(plan: TickPlan, held: list[FileSignature] | None = None) -> LandingCursor:
    """The cursor to keep when ready files (`held`, default all) cannot be requested yet (no
    model, or a run of the same file still under way): they stay pending, so the first tick
    that can score them requests them without waiting again."""
    cursor = LandingCursor(
        dict(plan.cursor.scored), dict(plan.cursor.pending), list(plan.cursor.ignored)
    )
    for signature in plan.ready if held is None else held:
        cursor.scored.pop(signature.name, None)
        cursor.pending[signature.name] = signature.stamp()
    return cursor


def group_ready(
    ready: list[FileSignature], known_keys: set[str], max_files: int, max_bytes: int
) -> list[list[FileSignature]]:
    """The runs to request for a tick's ready files, in the order their new batch keys are to
    be added. Small files new to the batch set share runs of up to `max_files`: a run starts a
    process that takes seconds before it scores a row, and a file of a few thousand rows takes
    a fraction of one. Their keys are added together, in this order, so each group is one
    contiguous range of partitions. A large file, or one landing again under a known key, has a
    run of its own: it must not delay a group, and its key is not where a range could be."""
    grouped, alone, seen = [], [], set(known_keys)
    for signature in sorted(ready, key=lambda s: s.batch_key):
        small = signature.size <= max_bytes and max_files > 1
        if small and signature.batch_key not in seen:
            grouped.append(signature)
        else:
            alone.append([signature])
        seen.add(signature.batch_key)
    groups = [grouped[i : i + max_files] for i in range(0, len(grouped), max_files)]
    return groups + alone


def run_batches(tags: dict[str, str], run_config: dict) -> dict[str, str | None]:
    """The batches a landing run scores and their files' names (None where the run does not
    say, as for a partition materialized from the UI), from the run's config and tags."""
    config = run_config.get("ops", {}).get("batch_scores", {}).get("config", {})
    if config.get("files"):
        return dict(config["files"])
    key = tags.get(PARTITION_TAG)
    return {key: tags.get(LANDING_FILE_TAG)} if key else {}


def find_batch_file(folder: str | Path, batch_key: str) -> Path | None:
    """The landing file whose batch key is `batch_key`, if it is still there."""
    for name in scan_landing(folder):
        if batch_key_for(name) == batch_key:
            return resolve_inside(folder, name)
    return None


def quarantine(path: str | Path, quarantine_dir: str | Path, reason: str) -> Path:
    """Move a bad file into `quarantine_dir` and write its reason file beside it
    (`reason_file_for`). A name already in quarantine gets a timestamp, so an earlier rejected
    file is never overwritten. Names of any legal length work: the reason file's name is
    shortened to fit the file system's limit, and its first line names the file in full."""
    source = Path(path)
    root = Path(quarantine_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = resolve_inside(root, source.name)
    if target.exists() or reason_file_for(target).exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        stamped = f"{_fit(source.stem, len(stamp) + len(source.suffix) + 1)}.{stamp}"
        target = resolve_inside(root, stamped + source.suffix)
    reason_file = reason_file_for(target)
    # The reason is written first: a move that fails leaves the file in landing, not a
    # quarantined file without its reason.
    reason_file.write_text(
        f"file: {source.name}\n"
        f"quarantined as: {target.name}\n"
        f"rejected at: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"moved from: {source.parent}\n\n{reason.rstrip()}\n",
        encoding="utf-8",
    )
    try:
        shutil.move(str(source), target)
    except OSError:
        reason_file.unlink(missing_ok=True)
        raise
    return target


def reason_file_for(quarantined: Path) -> Path:
    """`<name>.reason.txt` beside a quarantined file; for a name too long to take the suffix,
    the name cut short with a hash of the whole name (still unique, still sorted beside it)."""
    name = quarantined.name
    if len(name.encode("utf-8", "surrogateescape")) + len(REASON_SUFFIX) <= NAME_MAX_BYTES:
        return quarantined.with_name(name + REASON_SUFFIX)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    short = _fit(name, len(REASON_SUFFIX) + len(digest) + 1)
    return quarantined.with_name(f"{short}~{digest}{REASON_SUFFIX}")


def _fit(text: str, reserve: int) -> str:
    """`text` cut (at a character boundary) so that it plus `reserve` bytes fits in a name."""
    room = NAME_MAX_BYTES - reserve
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) <= room:
        return text
    return encoded[:room].decode("utf-8", "ignore")
