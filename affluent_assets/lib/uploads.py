"""Files handed in over HTTP land in a watched folder (the landing folder for files to score, the
outcomes folder for campaign outcome files) the way a finished copy would: written under a
staging folder its sensor never reads, then renamed into place under a safe name that no other
file has. The sensor then reads it exactly as a file dropped by hand: one way in."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from affluent_assets.lib import landing

DEFAULT_MAX_BYTES = 2 * 1024**3


class UploadRefused(ValueError):
    """An upload that is not taken; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def landing_name(original: str) -> str:
    """A file name for an upload: only safe characters (the batch key's rules), the original's
    suffix and a random tag, so an upload can neither escape the folder nor take the name (and
    so the batch) of any other file, uploaded or dropped, earlier or at the same time."""
    base = Path(original.replace("\\", "/")).name  # a browser may send a path
    suffix = Path(base).suffix.lower()
    if suffix not in landing.LANDING_SUFFIXES:
        raise UploadRefused(
            415, f"{base or 'the file'}: only {', '.join(landing.LANDING_SUFFIXES)} files are taken"
        )
    stem = landing.batch_key_for(base[: -len(suffix)] or "upload")[:80].rstrip(".-_") or "upload"
    return f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


async def receive(chunks: AsyncIterator[bytes], folder: str | Path, max_bytes: int) -> Path:
    """Write the bytes to a new file under `<folder>/.uploads/` (never read by a sensor:
    `landing.scan_landing` skips dot-names) and return it. Over `max_bytes`, or cut off halfway:
    the partial file is removed, UploadRefused or the transport's error is raised, and nothing
    is left behind."""
    staging = Path(folder) / landing.UPLOAD_STAGING
    staging.mkdir(parents=True, exist_ok=True)
    partial = staging / f"{uuid.uuid4().hex}.partial"
    written = 0
    try:
        with partial.open("wb") as out:
            async for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise UploadRefused(413, f"the file is larger than {max_bytes:,} bytes")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def land(staged: Path, name: str, folder: str | Path) -> Path:
    """Rename a file received under `folder` (see `receive`) into `folder` as `name` (one step
    on one file system: the sensor sees it whole or not at all)."""
    target = landing.resolve_inside(folder, name)
    if target.exists():
        staged.unlink(missing_ok=True)
        raise UploadRefused(409, f"{name}: a file of that name is already in the folder")
    os.replace(staged, target)
    return target
