"""The landing folder: which files are there, when one is ready to read, and what happens to a
bad one. Plain functions (no Dagster) used by the landing sensor and the batch-scoring assets.

Exactly-once rules, in order:
- a tick only lists and stats files; a file is identified by its name, size and mtime;
- a file is ready when two consecutive ticks saw the same size and mtime (still-growing files
  wait); its run key is `<batch key>:<size>:<mtime_ns>`, so it runs once per version;
- the batch key comes from the file name, made safe for partitions, paths and SQL;
- the run hashes the content; content already scored under another batch adds no rows.
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

LANDING_SUFFIXES = (".csv", ".xlsx", ".parquet")
CURSOR_VERSION = 1
MAX_KEY_LENGTH = 120
REASON_SUFFIX = ".reason.txt"
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
    at that size and mtime, waiting for a second tick to confirm they stopped changing."""

    scored: dict[str, list[int]] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)

    def serialize(self) -> str:
        return json.dumps(
            {"version": CURSOR_VERSION, "scored": self.scored, "pending": self.pending},
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
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except (OSError, UnsafePath):
                continue  # vanished between listing and stat, or a link out of the folder
            found[entry.name] = FileSignature(entry.name, stat.st_size, stat.st_mtime_ns)
    return found


def plan_tick(cursor: LandingCursor, files: dict[str, FileSignature]) -> TickPlan:
    """Compare this tick's listing with the cursor. A file is ready when the previous tick saw it
    with the same size and mtime (and it was not already scored at that size and mtime); an
    empty file waits like a growing one until it has been stable for a tick."""
    ready, settling, unchanged = [], [], []
    scored = {n: s for n, s in cursor.scored.items() if n in files}
    pending: dict[str, list[int]] = {}
    for name in sorted(files):
        signature = files[name]
        stamp = signature.stamp()
        if scored.get(name) == stamp:
            unchanged.append(signature)
        elif cursor.pending.get(name) == stamp:
            ready.append(signature)
            scored[name] = stamp
        else:
            settling.append(signature)
            pending[name] = stamp
    removed = sorted((set(cursor.scored) | set(cursor.pending)) - set(files))
    return TickPlan(ready, settling, unchanged, removed, LandingCursor(scored, pending))


def hold_back(plan: TickPlan) -> LandingCursor:
    """The cursor to keep when ready files cannot be requested yet (no model): they stay
    pending, so the first tick that can score them requests them without waiting again."""
    cursor = LandingCursor(dict(plan.cursor.scored), dict(plan.cursor.pending))
    for signature in plan.ready:
        cursor.scored.pop(signature.name, None)
        cursor.pending[signature.name] = signature.stamp()
    return cursor


def find_batch_file(folder: str | Path, batch_key: str) -> Path | None:
    """The landing file whose batch key is `batch_key`, if it is still there."""
    for name in scan_landing(folder):
        if batch_key_for(name) == batch_key:
            return resolve_inside(folder, name)
    return None


def content_hash(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """sha256 of the file's bytes (read in the run, never in a tick)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot(path: str | Path, into: str | Path) -> tuple[Path, str]:
    """Copy a landing file into `into` (same name) and hash the copy, so the rows read and the
    hash recorded describe the same bytes even if the original is replaced meanwhile."""
    source = Path(path)
    copy = resolve_inside(into, source.name)
    shutil.copyfile(source, copy)
    return copy, content_hash(copy)


def quarantine(path: str | Path, quarantine_dir: str | Path, reason: str) -> Path:
    """Move a bad file into `quarantine_dir` and write `<name>.reason.txt` beside it. A name
    already in quarantine gets a timestamp, so an earlier rejected file is never overwritten."""
    source = Path(path)
    root = Path(quarantine_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = resolve_inside(root, source.name)
    if target.exists() or target.with_name(target.name + REASON_SUFFIX).exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = resolve_inside(root, f"{source.stem}.{stamp}{source.suffix}")
    shutil.move(str(source), target)
    reason_file = target.with_name(target.name + REASON_SUFFIX)
    reason_file.write_text(
        f"file: {source.name}\n"
        f"rejected at: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"moved from: {source.parent}\n\n{reason.rstrip()}\n",
        encoding="utf-8",
    )
    return target
