"""What every reference runner shares: the jobs a meta file asks for, their frames, sharding, the
atomic per-expression writer that makes a run resumable, and the loop that drives a model.

A runner sees only the benchmark's public inputs (`meta_expressions.json` and the JPEG frames),
never the ground truth. It writes the submission layout the scorer reads:
`<split>/<video>/<exp_id>/<exp_id>-<obj_id>.json` holding `{"<frame>": RLE}` for non-empty masks.

Nothing here imports torch: the model runners import it inside `load`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import rle
from ..groundtruth import SPLITS

Mask = np.ndarray | Mapping[str, Any]  # a 2-D boolean mask, or an RLE dict {"size", "counts"}
MANIFEST = ".egomask-run-{index}of{count}.json"  # one per shard in the work folder, never in the zip


class RunnerError(Exception):
    """A run cannot start or go on, for a reason its user can fix: one sentence."""


@dataclass(frozen=True)
class Job:
    """One referring expression to segment: where its frames are and where its masks go."""

    split: str
    video: str
    exp_id: str
    obj_id: str
    expression: str
    clip: str  # the frames folder: a medium video `<clip>--<k>` reads the frames of `<clip>`
    frames: tuple[str, ...]

    @property
    def relative_path(self) -> str:
        return f"{self.split}/{self.video}/{self.exp_id}/{self.exp_id}-{self.obj_id}.json"


class Frames:
    """A job's frames, read one at a time from `<frames>/<clip>/<frame>.jpg` (never all at once).
    Every frame of a video must have one size (masks are written at it)."""

    def __init__(self, folder: Path, job: Job) -> None:
        self.folder = folder / job.clip
        self.names = job.frames
        self.size: tuple[int, int] | None = None  # (height, width), from the first frame read

    def __len__(self) -> int:
        return len(self.names)

    def path(self, index: int) -> Path:
        return self.folder / f"{self.names[index]}.jpg"

    def read(self, index: int) -> np.ndarray:
        """The frame as an (H, W, 3) uint8 RGB array."""
        from PIL import Image

        try:
            with Image.open(self.path(index)) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot read the frame {self.path(index)}: {exc}") from exc
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise RunnerError(f"the frame {self.path(index)} is {size[0]}x{size[1]} (height x width), but the "
                              f"video's other frames are {self.size[0]}x{self.size[1]}: every frame of a video "
                              f"must have one size")
        return pixels

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self.names)):
            yield self.read(index)


class Model(Protocol):
    """A loaded runner: masks for one job at a time, frame name → mask, non-empty or not."""

    def predict(self, job: Job, frames: Frames) -> Iterable[tuple[str, Mask]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Runner:
    """A reference runner: what the list shows, and how to load its model."""

    name: str
    description: str
    version: str
    needs_weights: bool
    devices: tuple[str, ...]
    load: Callable[..., Model]  # load(weights=Path | None, device=str, options=Mapping[str, str]) -> Model
    options: Mapping[str, str] = field(default_factory=dict)  # option -> what it does (default)

    def listing(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description, "version": self.version,
                "needs_weights": self.needs_weights, "devices": list(self.devices), "options": dict(self.options)}


# --- the jobs a meta file asks for -----------------------------------------------------------

def frames_root(folder: str | os.PathLike[str]) -> Path:
    """The folder holding one sub-folder of JPEGs per clip: `folder` itself or its `JPEGImages/`."""
    root = Path(folder)
    if (root / "JPEGImages").is_dir():
        return root / "JPEGImages"
    return root


def _check_name(path: Path, what: str, name: str) -> None:
    """An id becomes a file or folder name of the submission: it must stay one name, in its folder."""
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise RunnerError(f"{path}: the {what} {name!r} cannot be a file name (empty, '.', '..', or with a "
                          f"slash): it would be written outside its folder")


def load_jobs(meta_path: str | os.PathLike[str], *, split: str | None = None) -> list[Job]:
    """Every expression of a meta file, in file order. A whole-benchmark file names each video's
    split (`subset`); a split's own file (`subset/<split>/meta_expressions.json`) takes it from
    `split` or from its folder's name. `split` also keeps only that split's videos."""
    path = Path(meta_path)
    if split is not None and split not in SPLITS:
        raise RunnerError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        videos = meta["videos"]
        if not isinstance(videos, dict):
            raise TypeError
    except FileNotFoundError:
        raise RunnerError(f"the meta file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise RunnerError(f"{path} is not a meta_expressions.json file (expected {{\"videos\": {{...}}}})") from None
    folder_split = path.parent.name if path.parent.name in SPLITS else None
    jobs: list[Job] = []
    for video, info in videos.items():
        try:
            video_split = info.get("subset") or split or folder_split
            frames = tuple(str(f) for f in info["frames"])
            expressions = info["expressions"]
            if video_split is None:
                raise RunnerError(f"{path} does not say which split the video {video!r} is in (no \"subset\"): "
                                  f"pass --split")
            if video_split not in SPLITS:
                raise RunnerError(f"{path}: the video {video!r} has an unknown subset {video_split!r}")
            if split is not None and video_split != split:
                continue
            if not frames:
                raise RunnerError(f"{path}: the video {video!r} lists no frames")
            clip = video.split("--")[0] if video_split == "medium" else video
            for name in (video, *frames):
                _check_name(path, "video" if name == video else f"frame of {video!r}", name)
            for exp_id, exp in expressions.items():
                obj_id = exp["obj_id"]
                if isinstance(obj_id, bool) or not isinstance(obj_id, str | int):
                    raise RunnerError(f"{path}: expression {exp_id!r} of {video!r} has obj_id {obj_id!r}, not a "
                                      f"string or a number")
                _check_name(path, f"expression of {video!r}", str(exp_id))
                _check_name(path, f"obj_id of {video!r}/{exp_id}", str(obj_id))
                jobs.append(Job(split=video_split, video=video, exp_id=str(exp_id), obj_id=str(obj_id),
                                expression=str(exp["exp"]), clip=clip, frames=frames))
        except (AttributeError, KeyError, TypeError):
            raise RunnerError(f"{path}: the video {video!r} lacks its frames or its expressions "
                              f"(each needs \"frames\" and \"expressions\" with \"exp\" and \"obj_id\")") from None
    if not jobs:
        raise RunnerError(f"{path} lists no expressions" + (f" in the {split} split" if split else ""))
    return jobs


def check_frames(jobs: Sequence[Job], folder: str | os.PathLike[str]) -> Path:
    """The frames root, once every frame the jobs need is there; else say how many are missing."""
    root = frames_root(folder)
    if not root.is_dir():
        raise RunnerError(f"the frames folder {folder} does not exist")
    needed = {(job.clip, frame) for job in jobs for frame in job.frames}
    listed: dict[str, set[str]] = {}
    missing = []
    for clip, frame in sorted(needed):
        if clip not in listed:
            try:
                listed[clip] = {p.name for p in (root / clip).iterdir()}
            except OSError:
                listed[clip] = set()
        if f"{frame}.jpg" not in listed[clip]:
            missing.append(f"{clip}/{frame}.jpg")
    if missing:
        raise RunnerError(f"the frames folder {root} lacks {len(missing):,} of the {len(needed):,} frames the "
                          f"meta file lists (first: {missing[0]}); it must hold <clip>/<frame>.jpg for every "
                          f"video (a medium video <clip>--<k> reads <clip>/)")
    return root


# --- shards ------------------------------------------------------------------------------------

def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` → (i, n), 0 ≤ i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise RunnerError(f"--shard takes i/n (for example 0/4), not {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise RunnerError(f"--shard {text}: i must be between 0 and n-1, and n at least 1")
    return index, count


def shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard `index` of `count`. Whole videos go to one shard; videos are dealt to the
    least loaded shard, largest first (load: frames × expressions), so the shards finish together.
    Deterministic: the same meta file gives every machine the same split of work."""
    if count == 1:
        return list(jobs)
    cost: dict[str, int] = {}
    for job in jobs:
        cost[job.video] = cost.get(job.video, 0) + len(job.frames)
    load = [0] * count
    owner: dict[str, int] = {}
    for video in sorted(cost, key=lambda v: (-cost[v], v)):
        chosen = min(range(count), key=lambda s: (load[s], s))
        owner[video] = chosen
        load[chosen] += cost[video]
    return [job for job in jobs if owner[job.video] == index]


# --- writing, resuming -------------------------------------------------------------------------

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


# --- the run -----------------------------------------------------------------------------------

@dataclass
class Progress:
    """What a run has done so far; the callback gets it after each expression."""

    expressions: int  # in this run (this shard)
    frames: int  # frame-expressions in this run
    done_expressions: int = 0
    done_frames: int = 0
    skipped_expressions: int = 0  # already written by an earlier, interrupted run
    skipped_frames: int = 0
    masks: int = 0  # non-empty masks written
    seconds: float = 0.0  # model time, skipped expressions excluded
    job: Job | None = None

    @property
    def frames_per_second(self) -> float:
        worked = self.done_frames - self.skipped_frames
        return worked / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RunReport:
    runner: str
    version: str
    device: str
    options: dict[str, str]
    shard: tuple[int, int]
    expressions: int
    frames: int
    skipped_expressions: int
    masks: int
    seconds: float  # wall time of the whole run, loading included
    model_seconds: float
    frames_per_second: float
    out: str

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "shard": f"{self.shard[0]}/{self.shard[1]}"}


def check_cuda() -> None:
    """Refuse a CUDA run on a machine whose torch sees no GPU. Without torch here, the runner's own
    environment decides (an adapter's model runs under another Python)."""
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise RunnerError(f"CUDA was asked for, but torch {torch.__version__} ({build}) sees no GPU on this "
                          f"machine: pass --device cpu, or run on a GPU machine")


def _earlier_settings(folder: Path, manifest: dict[str, object], shard_of: tuple[int, int]) -> Path:
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
def _exclusive(lock: Path) -> Iterator[None]:
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


def run(runner: Runner, *, jobs: Sequence[Job], frames: str | os.PathLike[str], out: str | os.PathLike[str],
        device: str = "cpu", weights: str | os.PathLike[str] | None = None,
        options: Mapping[str, str] | None = None, shard_of: tuple[int, int] = (0, 1),
        progress: Callable[[Progress], None] | None = None) -> RunReport:
    """Run `runner` on the jobs of shard `shard_of` (jobs are the whole meta file's; the shard is
    taken here), writing to `out`: a folder, or a `.zip` (built in `<out minus .zip>.partial/`,
    which a resumed run picks up). Expressions already written are skipped."""
    started = time.perf_counter()
    options = {str(k): str(v) for k, v in (options or {}).items()}
    unknown = sorted(set(options) - set(runner.options))
    if unknown:
        known = ", ".join(runner.options) or "none"
        raise RunnerError(f"{runner.name} has no option {unknown[0]!r} (its options: {known})")
    if device not in runner.devices:
        raise RunnerError(f"{runner.name} runs on {' or '.join(runner.devices)}, not {device!r}")
    if device == "cuda":
        check_cuda()
    weights_path = Path(weights) if weights is not None else None
    if runner.needs_weights and (weights_path is None or not weights_path.is_dir()):
        raise RunnerError(f"{runner.name} needs its weights: pass --weights DIR, a local folder "
                          f"(docs/runners.md says how to download them)" if weights_path is None else
                          f"the weights folder {weights_path} does not exist (docs/runners.md says how to "
                          f"download {runner.name}'s weights)")
    mine = shard(jobs, *shard_of)
    root = check_frames(mine, frames)
    target = Path(out)
    zipped = target.suffix.lower() == ".zip"
    folder = target.with_name(target.name[:-4] + ".partial") if zipped else target
    manifest = {"runner": runner.name, "version": runner.version, "options": options,
                "shard": f"{shard_of[0]}/{shard_of[1]}", "device": device}
    if target.exists() and (zipped or not target.is_dir()) and not folder.is_dir():
        raise RunnerError(f"--out {target} already exists" + (" (a finished run)" if zipped else ", and is a file") +
                          ": remove it, or write to another --out")
    # A zip is one run's, whatever its shard; shards may share a folder, one run per shard at a time.
    lock = folder / (".egomask-run.lock" if zipped else f".egomask-run-{shard_of[0]}of{shard_of[1]}.lock")
    try:
        with _exclusive(lock):
            report = _run_locked(runner, mine, root, folder, target if zipped else None, manifest, shard_of, device,
                                 weights_path, options, progress, started)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise RunnerError(f"cannot write to --out {target}: {exc.strerror} ({exc.filename})") from None
    if zipped:
        with contextlib.suppress(OSError):  # a run that started since keeps the folder and its files
            lock.unlink()
            folder.rmdir()
    return report


def _run_locked(runner: Runner, mine: list[Job], root: Path, folder: Path, zip_target: Path | None,
                manifest: dict[str, object], shard_of: tuple[int, int], device: str, weights_path: Path | None,
                options: dict[str, str], progress: Callable[[Progress], None] | None, started: float) -> RunReport:
    manifest_path = _earlier_settings(folder, manifest, shard_of)
    writer = Writer(folder)
    state = Progress(expressions=len(mine), frames=sum(len(job.frames) for job in mine))
    model = runner.load(weights=weights_path, device=device, options=options) if mine else None
    # Recorded only once the runner accepted its settings, so a refused start leaves nothing to resume.
    manifest_path.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    try:
        for job in mine:
            state.job = job
            if writer.done(job):
                state.skipped_expressions += 1
                state.skipped_frames += len(job.frames)
            else:
                tick = time.perf_counter()
                _, written = writer.write(job, model.predict(job, Frames(root, job)))  # type: ignore[union-attr]
                state.seconds += time.perf_counter() - tick
                state.masks += written
            state.done_expressions += 1
            state.done_frames += len(job.frames)
            if progress is not None:
                progress(state)
    finally:
        if model is not None:
            model.close()
    if zip_target is not None:
        zip_folder(folder, zip_target)
        # The zip holds it all; a resumed run needs the folder only until here (the lock file goes
        # last, while it is still held).
        for entry in folder.iterdir():
            if entry.name != ".egomask-run.lock":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return RunReport(runner=runner.name, version=runner.version, device=device, options=options, shard=shard_of,
                     expressions=state.expressions, frames=state.frames,
                     skipped_expressions=state.skipped_expressions, masks=state.masks,
                     seconds=time.perf_counter() - started, model_seconds=state.seconds,
                     frames_per_second=state.frames_per_second, out=str(zip_target or folder))
