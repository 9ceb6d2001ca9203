"""Sa2VA and VideoLISA, each run in its own environment: the parent side of the adapters.

Both models pin transformers versions that cannot live beside ours (Sa2VA's remote code ships
with its weights; VideoLISA is a repository of its own), so a run starts ONE child process with
the model environment's Python (`--option python=...`) running `adapter_worker.py`, loads the
model there once, and then sends it one request per expression (the frame paths in order, the
expression, the chunk size) as a JSON line on its stdin. The child answers one JSON line per
frame with that frame's mask as uncompressed run lengths, which are compressed here into the RLE
the writer stores: a long video's masks stream through one frame at a time, and the child holds
at most one chunk's masks.

Nothing here imports torch or transformers: they live in the child's environment.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import rle
from .base import Frames, Job, RunnerError

WORKER = Path(__file__).with_name("adapter_worker.py")
STDERR_LINES = 25  # how much of the child's stderr a failure shows
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Spec:
    """What one adapted model needs: its name in messages, the default chunk, its options."""

    title: str
    chunk: int  # frames per model call; 0 is the whole video in one call
    required: tuple[str, ...]


SPECS = {
    # Sa2VA runs SAM2 over every frame it is given at once: long videos go in chunks of 32, each
    # led by the video's first frames (its key frames), see adapter_worker.sa2va_call_frames.
    "sa2va": Spec("Sa2VA", 32, ("python",)),
    # VideoLISA's masks do not depend on the chunk (SAM decodes each frame on its own); the chunk
    # only bounds memory, and each chunk repeats the MLLM pass, so it is larger.
    "videolisa": Spec("VideoLISA", 64, ("python", "code", "vision_tower")),
}


def _interpreter(value: str | None, title: str) -> str:
    if not value:
        raise RunnerError(f"{title} runs in its own environment: pass --option python=PATH, that environment's "
                          f"Python (docs/runners.md)")
    found = shutil.which(value) if os.sep not in value else (value if os.path.isfile(value) else None)
    if found is None or not os.access(found, os.X_OK):
        raise RunnerError(f"the python option {value!r} is not an executable file: pass the Python of {title}'s "
                          f"environment (for example /opt/sa2va/.venv/bin/python)")
    return found


def _weight_files(folder: Path) -> list[str]:
    """The weight files a `from_pretrained` folder names, or [] when it has none."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [name]
        try:
            shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            raise RunnerError(f"{path} is not a weights index (expected {{\"weight_map\": {{...}}}}): download "
                              f"the weights again") from None
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            raise RunnerError(f"the weights folder {folder} lacks {len(missing)} of its {len(shards)} weight files "
                              f"(first: {missing[0]}): the download did not finish")
        return [name, *shards]
    return []


def check_weights(model: str, weights: Path | None, options: Mapping[str, str]) -> None:
    """Refuse, in one sentence, a weights folder without the files the model loads from it."""
    spec = SPECS[model]
    if weights is None or not weights.is_dir():
        raise RunnerError(f"{spec.title} needs its weights folder: pass --weights DIR (docs/runners.md says how "
                          f"to download it)")
    config_path = weights / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RunnerError(f"{weights} has no readable config.json: it is not a downloaded {spec.title} model "
                          f"(docs/runners.md)") from None
    if not _weight_files(weights):
        raise RunnerError(f"{weights} has no weight files ({', '.join(WEIGHT_FILES)}): download the {spec.title} "
                          f"weights into it (docs/runners.md)")
    if not (weights / "tokenizer_config.json").is_file():
        raise RunnerError(f"{weights} has no tokenizer (tokenizer_config.json): download the whole {spec.title} "
                          f"repository, not only its weights")
    if model == "sa2va":
        auto_map = config.get("auto_map") if isinstance(config, dict) else None
        entry = (auto_map or {}).get("AutoModel") or (auto_map or {}).get("AutoModelForCausalLM")
        if not isinstance(entry, str) or "." not in entry:
            raise RunnerError(f"{config_path} names no model code (auto_map.AutoModel): Sa2VA loads its own code "
                              f"from the weights folder, download ByteDance/Sa2VA-4B or -26B whole")
        code = entry.split("--")[-1].rsplit(".", 1)[0] + ".py"
        if not (weights / code).is_file():
            raise RunnerError(f"{weights} lacks {code}, the model code its config names: download the whole "
                              f"repository")
    if model == "videolisa":
        module = options.get("model_class", "model.VideoLISA:VideoLISAForCausalLM").partition(":")[0]
        source = Path(options["code"]) / (module.replace(".", "/") + ".py")
        if not source.is_file():
            raise RunnerError(f"the code option {options['code']!r} is not a VideoLISA checkout (no "
                              f"{module.replace('.', '/')}.py): pass the folder of git clone "
                              f"https://github.com/showlab/VideoLISA")
        tower = Path(options["vision_tower"])
        if not (tower / "config.json").is_file() or not (tower / "preprocessor_config.json").is_file():
            raise RunnerError(f"the vision_tower option {str(tower)!r} is not a downloaded CLIP model (config.json "
                              f"and preprocessor_config.json): download openai/clip-vit-large-patch14-336 there")


class _Tail(threading.Thread):
    """Keeps the last lines of the child's stderr (read all the time, so that the child never
    blocks on a full pipe)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            # A progress bar rewrites its line with "\r": keep what a terminal would show last.
            self.lines.append(raw.decode("utf-8", "replace").rstrip().rsplit("\r", 1)[-1])

    def text(self) -> str:
        return "\n".join(line for line in self.lines if line.strip())


class AdapterModel:
    """A model running in a child process; `predict` streams one expression's masks."""

    def __init__(self, *, model: str, python: str, weights: Path, device: str, chunk: int,
                 options: Mapping[str, str]) -> None:
        self.spec = SPECS[model]
        self.chunk = chunk
        self.python = python
        forwarded = {k: v for k, v in options.items() if k not in ("python", "chunk")}
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        try:
            self.process = subprocess.Popen(
                [python, str(WORKER), "--model", model, "--weights", str(weights), "--device", device,
                 "--options", json.dumps(forwarded)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise RunnerError(f"cannot start {python}: {exc.strerror or exc}") from None
        self.tail = _Tail(self.process.stderr)  # type: ignore[arg-type]
        self.tail.start()
        self.busy = False  # a request is half answered: the stream is out of step
        try:
            self._handshake(device)
        except BaseException:
            self.close()
            raise

    # -- talking to the child --

    def _failed(self, what: str) -> RunnerError:
        """The child stopped or erred: its exit status and the last lines of its stderr."""
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.tail.join(timeout=5)
        output = self.tail.text()
        return RunnerError(f"the {self.spec.title} worker ({self.python}) {what} (exit status {code})"
                           + (f"; the end of its output:\n{output}" if output else ", and printed nothing"))

    def _send(self, message: dict[str, Any]) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failed("stopped") from None

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise self._failed("stopped")
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError
        except ValueError:
            self.process.kill()
            raise self._failed(f"wrote something other than the protocol ({line[:80]!r})") from None
        if message.get("type") == "error":
            raise self._failed(f"failed: {message.get('message')}")
        return message

    def _handshake(self, device: str) -> None:
        hello = self._receive()
        if hello.get("type") != "hello":
            raise RunnerError(f"{self.python} did not answer as the adapter worker does (got {hello.get('type')!r})")
        missing = [name for name in ("torch", "transformers", "numpy", "PIL") if not hello.get(name)]
        if missing:
            raise RunnerError(f"the Python {self.python} cannot import {', '.join(missing)}: point the python "
                              f"option at {self.spec.title}'s own environment (docs/runners.md)")
        if device.startswith("cuda") and not hello.get("cuda"):
            raise RunnerError(f"device {device} was asked for, but torch {hello['torch']} in {self.python} sees no "
                              f"CUDA GPU: run on a GPU machine, or install a CUDA build of torch there")
        self.versions = {k: hello.get(k) for k in ("python", "torch", "transformers", "cuda")}
        self._send({"type": "load"})
        ready = self._receive()
        if ready.get("type") != "ready":
            raise self._failed(f"answered {ready.get('type')!r} instead of loading the model")

    # -- the Model protocol --

    def predict(self, job: Job, frames: Frames) -> Iterator[tuple[str, Mapping[str, object]]]:
        """The job's non-empty masks as RLE, in frame order, as the child streams them."""
        if self.busy or self.process.poll() is not None:
            raise RunnerError(f"the {self.spec.title} worker was stopped in the middle of an expression; "
                              f"start the run again (it resumes)")
        self._send({"type": "predict", "frames": [str(frames.path(i)) for i in range(len(frames))],
                    "names": list(frames.names), "expression": job.expression, "chunk": self.chunk})
        self.busy = True
        expected = iter(frames.names)
        try:
            while True:
                message = self._receive()
                if message.get("type") == "done":
                    if next(expected, None) is not None:
                        raise RunnerError(f"the {self.spec.title} worker stopped early on {job.relative_path}")
                    self.busy = False
                    return
                frame = message.get("frame")
                if message.get("type") != "mask" or frame != next(expected, None):
                    raise RunnerError(f"the {self.spec.title} worker answered out of order on {job.relative_path} "
                                      f"(frame {frame!r})")
                runs = message.get("runs")
                if runs:
                    height, width = (int(v) for v in message["size"])
                    yield frame, {"size": [height, width], "counts": rle.compress(runs, height, width)}
        finally:
            if self.busy:  # abandoned half-way (or failed): what the child still sends is meaningless
                self.process.kill()

    def close(self) -> None:
        """Ask the child to finish, and make sure it has."""
        if self.process.poll() is None:
            try:
                self._send({"type": "quit"})
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (RunnerError, subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self.tail.join(timeout=5)


def load(*, weights: Path | None, device: str, options: Mapping[str, str], model: str) -> AdapterModel:
    """Start `model`'s worker in its own environment (`options["python"]`) and load it there."""
    spec = SPECS[model]
    python = _interpreter(options.get("python"), spec.title)
    missing = [name for name in spec.required if not options.get(name)]
    if missing:
        raise RunnerError(f"{spec.title} needs the option {missing[0]}=... (docs/runners.md)")
    try:
        chunk = int(options.get("chunk", spec.chunk))
        if chunk < 0:
            raise ValueError
    except ValueError:
        raise RunnerError(f"the chunk option takes a number of frames (0: the whole video), not "
                          f"{options.get('chunk')!r}") from None
    check_weights(model, weights, options)
    assert weights is not None
    return AdapterModel(model=model, python=python, weights=weights, device=device, chunk=chunk, options=options)

