"""What a run writes: one expression's masks at a time, atomically, so that an interrupted run
resumes; the submission zip of a run or of its shards; and the manifest and lock that keep two
runs from mixing in one output.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .. import rle
from .base import Job, Mask, RunnerError

MANIFEST = ".egomask-run-{index}of{count}.json"  # one per shard in the work folder, never in the zip


def _as_rle(mask: Mask, frame: str, job: Job) -> dict[str, object] | None:
    """The RLE to write for one predicted mask, or None when it is empty."""
    if isinstance(mask, Mapping):
        size = [int(v) for v in mask["size"]]
        counts = mask["counts"]
        counts = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
        parsed = rle.parse_counts([counts], size[0] * size[1])
        return None if int(parsed.areas[0]) == 0 else {"size": size, "counts": counts}
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{job.relative_path}: the mask of frame {frame} has shape {array.shape}, not (H, W)")
    if not array.any():
        return None
    return rle.encode(array.astype(bool))


class Writer:
    """Writes a run's masks into `folder`, one expression at a time, each file atomically (a
    temporary name, then a rename), so that an interrupted run leaves only whole files and
    `done(job)` tells a resumed run what to skip."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def target(self, job: Job) -> Path:
        return self.folder / job.relative_path

    def done(self, job: Job) -> bool:
        return self.target(job).is_file()

    def write(self, job: Job, masks: Iterable[tuple[str, Mask]]) -> tuple[int, int]:
        """Stream a job's masks to its file; (frames seen, non-empty masks written)."""
        wanted = set(job.frames)
        encoded: dict[str, dict[str, object]] = {}
        seen = 0
        for frame, mask in masks:
            seen += 1
            if frame not in wanted:
                raise ValueError(f"{job.relative_path}: the runner gave a mask for frame {frame!r}, which the "
                                 f"meta file does not list for {job.video}")
            value = _as_rle(mask, frame, job)
            if value is not None:
                encoded[frame] = value
        ordered = {frame: encoded[frame] for frame in job.frames if frame in encoded}
        target = self.target(job)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(ordered, separators=(",", ":")), encoding="utf-8")
        os.replace(partial, target)
        return seen, len(ordered)


def _write_zip(entries: Mapping[str, Callable[[], bytes]], out: str | os.PathLike[str]) -> Path:
    """A zip of `entries` (name → reader), sorted with fixed timestamps, so that its bytes depend only
    on the masks; read one entry at a time and written under a temporary name, then renamed."""
    target = Path(out)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name]())
    os.replace(partial, target)
    return target


def _visible(name: str) -> bool:
    """The run's own files (manifests, locks, partial writes) stay out of every zip; nothing else
    does, so an id that starts with "." is written like any other."""
    last = name.rsplit("/", 1)[-1]
    return not (last.startswith(".egomask-run") or (last.startswith(".") and last.endswith(".partial")))


def _folder_entries(root: Path) -> dict[str, Callable[[], bytes]]:
    return {name: path.read_bytes for path in root.rglob("*")
            if path.is_file() and _visible(name := path.relative_to(root).as_posix())}


def zip_folder(folder: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Zip a run's folder, leaving out hidden files."""
    return _write_zip(_folder_entries(Path(folder)), out)


def merge(parts: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """One submission zip from the outputs of a run's shards (folders or zips, in any order).
    Shards write disjoint expressions, so a path found twice means two different runs were mixed."""
    owner: dict[str, str] = {}
    entries: dict[str, Callable[[], bytes]] = {}
    with contextlib.ExitStack() as stack:
        for part in parts:
            source = Path(part)
            if source.is_dir():
                found = _folder_entries(source)
            elif zipfile.is_zipfile(source):
                archive = stack.enter_context(zipfile.ZipFile(source))
                found = {info.filename: functools.partial(archive.read, info) for info in archive.infolist()
                         if not info.is_dir() and _visible(info.filename)}
            else:
                raise RunnerError(f"{source} is neither a run's folder nor a zip")
            for name, read in found.items():
                if name in owner:
                    raise RunnerError(f"{name} is in both {owner[name]} and {source}: these are not shards of "
                                      f"one run")
                owner[name] = str(source)
                entries[name] = read
        if not entries:
            raise RunnerError("the shards hold no predictions")
        return _write_zip(entries, out)


def earlier_settings(folder: Path, manifest: dict[str, object], shard_of: tuple[int, int]) -> Path:
    """The manifest's path, once it is clear that a resumed run is the same run (same runner,
    version, options and shard) or that the earlier one wrote nothing. Shards may share one folder:
    each has its own manifest, and they write disjoint files."""
    path = folder / MANIFEST.format(index=shard_of[0], count=shard_of[1])
    if path.is_file():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            earlier = None
        wrote = any(p.suffix == ".json" and _visible(p.relative_to(folder).as_posix()) for p in folder.rglob("*"))
        if earlier != manifest and wrote:
            raise RunnerError(f"{folder} holds an earlier run with other settings ({earlier}); resume it with "
                              f"those settings, or write to another --out")
    return path


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold `lock` (an flock) for the run: a second run into the same place is refused, not mixed in."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunnerError(f"another run is writing to {lock.parent} now: wait for it to end, or write to "
                              f"another --out") from None
        yield  # the lock goes with the file handle, also when the process is killed
