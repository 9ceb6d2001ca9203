"""The loop that drives a runner's model over its shard of the jobs: checks first (options, device,
weights, frames), then one expression at a time, skipping what an earlier run wrote, with progress
after each; the zip at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Frames, Job, Runner, RunnerError, check_frames, shard
from .output import Writer, earlier_settings, exclusive, zip_folder


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
        with exclusive(lock):
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
    manifest_path = earlier_settings(folder, manifest, shard_of)
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
