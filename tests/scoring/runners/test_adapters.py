"""The Sa2VA and VideoLISA adapters: the real parent and the real child (`adapter_worker.py`, run
with this venv's Python as the "model environment"), with fake models of the same call signatures
(fake_models/) standing in for the weights and the GPU that are not here."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring import evaluate, load_ground_truth, rle
from scoring.runners import Frames, Job, RunnerError, get_runner, load_jobs, run
from scoring.runners import adapter_worker as worker
from scoring.runners.adapters import load
from scoring.synth import synthesize

FAKES = Path(__file__).with_name("fake_models")


# --- fixtures: weights folders the real loaders accept -----------------------------------------

def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "<s>", "</s>", "please", "segment", "the", "in", "this", "image", "sure"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", bos_token="<s>", eos_token="</s>")
    tokenizer.add_tokens(["[SEG]"])
    tokenizer.save_pretrained(folder)


def _probe_weights(folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"probe.weight": torch.zeros(1, 1), "probe.bias": torch.zeros(1)}, str(folder / "model.safetensors"))


def sa2va_weights(folder: Path, **config: object) -> Path:
    """A Sa2VA-like weights folder: the fake's remote code beside a config whose auto_map names it."""
    folder.mkdir(parents=True)
    for source in (FAKES / "sa2va").glob("*.py"):
        shutil.copy(source, folder / source.name)
    auto = "modeling_fake_sa2va.FakeSa2VAModel"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "fake_sa2va", "architectures": ["FakeSa2VAModel"], "torch_dtype": "float32",
        "auto_map": {"AutoConfig": "configuration_fake_sa2va.FakeSa2VAConfig", "AutoModel": auto,
                     "AutoModelForCausalLM": auto}, **config}))
    _probe_weights(folder)
    _tokenizer(folder)
    return folder


def videolisa_weights(folder: Path, **config: object) -> tuple[Path, dict[str, str]]:
    """A VideoLISA-like weights folder, and the options pointing at the fake repository and CLIP."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "fake_videolisa", **config}))
    _probe_weights(folder)
    _tokenizer(folder)
    tower = folder.parent / "clip"
    tower.mkdir()
    (tower / "config.json").write_text("{}")
    # No rescaling or normalising: a uniform grey frame stays its grey level, which the fake reads back.
    (tower / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 8},
        "do_center_crop": True, "crop_size": {"height": 8, "width": 8}, "do_rescale": False,
        "do_normalize": False, "do_convert_rgb": True}))
    return folder, {"python": sys.executable, "code": str(FAKES / "videolisa"), "vision_tower": str(tower)}


def grey_video(root: Path, n: int, size: tuple[int, int] = (36, 64)) -> tuple[Job, Frames]:
    """One video whose frame t is uniformly grey at level 10 t (so a model's input names its frame)."""
    names = tuple(f"{5 * t:05d}" for t in range(n))
    (root / "clip").mkdir(parents=True)
    for t, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), 10 * t, dtype=np.uint8)).save(root / "clip" / f"{name}.jpg", quality=95)
    job = Job(split="long", video="clip", exp_id="0", obj_id="1", expression="The grey thing.", clip="clip",
              frames=names)
    return job, Frames(root, job)


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def levels(greys: list[float]) -> list[int]:
    return [round(g / 10) for g in greys]


def decoded(archive: zipfile.ZipFile, job: Job) -> dict[str, np.ndarray]:
    masks = json.loads(archive.read(job.relative_path))
    return {frame: rle.decode(value).astype(bool) for frame, value in masks.items()}


# --- the child's pure parts ---------------------------------------------------------------------

def test_it_builds_the_official_prompts_and_frame_choices() -> None:
    # As the official runner writes it, "the" doubled when the expression starts with one.
    assert worker.sa2va_prompt(" The Red mug. ") == "<image> Please segment the the red mug in this image."
    assert worker.videolisa_question("A knife.") == "Please segment the a knife in this image."
    # The official runner's sampling, worked by hand: edges of linspace(0, 10, 5) are 0 2 5 7 10.
    assert worker.videolisa_sparse_indices(10, 4) == [0, 3, 5, 8]
    # A short video repeats every frame (8 // 3 = 2 times), then adds the middles of 8 % 3 = 2 parts.
    assert worker.videolisa_sparse_indices(3, 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    # Edges of linspace(0, 31, 5): 0 7 15 23 31.
    assert worker.videolisa_dense_indices(32, 4) == [3, 10, 18, 26]
    assert worker.chunks(10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert worker.chunks(10, 0) == worker.chunks(10, 10) == [range(10)]
    assert worker.sa2va_call_frames(12, range(0, 4)) == [0, 1, 2, 3, 4]
    assert worker.sa2va_call_frames(12, range(8, 12)) == [0, 1, 2, 3, 4, 8, 9, 10, 11]
    assert worker.sa2va_call_frames(3, range(0, 3)) == [0, 1, 2]


def test_it_sends_masks_as_the_run_lengths_coco_compresses() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((7, 9)) < rng.uniform(0.05, 0.95)
        assert rle.compress(worker.runs_of(mask), 7, 9) == rle.encode(mask)["counts"]
    corner = np.zeros((4, 5), dtype=bool)
    corner[0, 0] = True  # a mask starting with foreground starts with an empty background run
    assert worker.runs_of(corner) == [0, 1, 19]
    assert worker.runs_of(np.zeros((4, 5), dtype=bool)) is None
    logits = np.where(np.arange(12).reshape(3, 4) > 5, 2.5, -1.0)
    assert (worker.to_frame_size(logits, 3, 4) == (logits > 0)).all()
    assert worker.to_frame_size(np.ones((2, 2), dtype=bool), 6, 8).shape == (6, 8)


# --- Sa2VA, end to end --------------------------------------------------------------------------

def test_it_runs_sa2va_end_to_end_on_synthetic_frames(tmp_path: Path) -> None:
    gt_root = synthesize(tmp_path / "gt", scale="tiny", frames=True)
    jobs = load_jobs(gt_root / "meta_expressions.json")
    # The fake answers this one without [SEG]: nothing may be written for it.
    silent = jobs[1] = replace(jobs[1], expression="Nothing to see")
    log = tmp_path / "calls.jsonl"
    weights = sa2va_weights(tmp_path / "weights", call_log=str(log), no_seg_on="nothing to see")
    # The registry lists Sa2VA for CUDA only (its remote code calls .cuda()); the fake runs on the CPU.
    runner = replace(get_runner("sa2va"), devices=("cuda", "cpu"))
    report = run(runner, jobs=jobs, frames=gt_root / "JPEGImages", out=tmp_path / "sa2va.zip", device="cpu",
                 weights=weights, options={"python": sys.executable, "chunk": "8"})

    assert report.expressions == len(jobs) and report.frames == sum(len(j.frames) for j in jobs)
    frames_root = gt_root / "JPEGImages"
    with zipfile.ZipFile(tmp_path / "sa2va.zip") as archive:
        for job in jobs:
            got = decoded(archive, job)
            if job == silent:
                assert got == {}
                continue
            frames = Frames(frames_root, job)
            expected = {name: _fake_mask(frames.read(i)) for i, name in enumerate(job.frames)}
            assert list(got) == [name for name in job.frames if expected[name].any()]
            for name, mask in got.items():
                assert mask.shape == expected[name].shape == (36, 64)
                assert (mask == expected[name]).all(), (job.relative_path, name)
    result = evaluate(load_ground_truth(gt_root), tmp_path / "sa2va.zip")
    assert len(result.expressions) == len(jobs) and not result.missing
    assert 0.0 < result.summaries["overall"].IoU_all < 100.0

    logged = calls(log)
    assert len({entry["pid"] for entry in logged}) == 1  # one child for the whole run
    prompts = {entry["text"] for entry in logged}
    assert prompts == {worker.sa2va_prompt(job.expression) for job in jobs}
    for job in jobs:  # every call of a video leads with that video's own first five frames
        frames = Frames(frames_root, job)
        keys = [float(np.asarray(frames.read(i), dtype=np.float64).mean()) for i in range(5)]
        mine = [e for e in logged if e["text"] == worker.sa2va_prompt(job.expression)]
        assert mine and all(e["keys"] == pytest.approx(keys) for e in mine)


def _fake_mask(rgb: np.ndarray) -> np.ndarray:
    total = rgb.astype(np.int64).sum(axis=2)
    return total >= total.mean()


def test_it_covers_every_frame_once_when_chunking_a_long_video(tmp_path: Path) -> None:
    job, frames = grey_video(tmp_path / "frames", 12)
    log = tmp_path / "calls.jsonl"
    # The fake answers at half size: the worker brings masks back to the frame's size.
    weights = sa2va_weights(tmp_path / "weights", call_log=str(log), mask_scale=0.5)
    model = load(weights=weights, device="cpu", options={"python": sys.executable, "chunk": "4"}, model="sa2va")
    try:
        got = list(model.predict(job, frames))
    finally:
        model.close()
    assert model.process.poll() == 0  # close() ended the child, which exited cleanly

    assert [frame for frame, _ in got] == list(job.frames)
    for _, mask in got:
        assert mask["size"] == [36, 64] and rle.decode(dict(mask)).all()  # grey frames: all of it
    keys = [0, 1, 2, 3, 4]
    assert [levels(entry["greys"]) for entry in calls(log)] == [keys, keys + [5, 6, 7], keys + [8, 9, 10, 11]]


def test_it_passes_the_whole_video_in_one_call_with_chunk_zero(tmp_path: Path) -> None:
    job, frames = grey_video(tmp_path / "frames", 7)
    log = tmp_path / "calls.jsonl"
    weights = sa2va_weights(tmp_path / "weights", call_log=str(log))
    model = load(weights=weights, device="cpu", options={"python": sys.executable, "chunk": "0"}, model="sa2va")
    try:
        assert len(list(model.predict(job, frames))) == 7
        assert len(list(model.predict(replace(job, exp_id="1"), frames))) == 7  # the same child, again
    finally:
        model.close()
    assert [levels(entry["greys"]) for entry in calls(log)] == [list(range(7))] * 2


# --- failures ------------------------------------------------------------------------------------

def test_it_turns_a_model_exception_into_a_runner_error_with_the_traceback(tmp_path: Path) -> None:
    job, frames = grey_video(tmp_path / "frames", 3)
    weights = sa2va_weights(tmp_path / "weights", crash_on="grey")
    model = load(weights=weights, device="cpu", options={"python": sys.executable}, model="sa2va")
    try:
        with pytest.raises(RunnerError) as caught:
            list(model.predict(job, frames))
    finally:
        model.close()
    message = str(caught.value)
    assert "fake Sa2VA fails on purpose" in message and "Traceback" in message and "exit status 1" in message
    with pytest.raises(RunnerError, match="start the run again"):
        list(model.predict(job, frames))


def test_it_reports_a_worker_that_dies_with_its_last_words(tmp_path: Path) -> None:
    job, frames = grey_video(tmp_path / "frames", 3)
    weights = sa2va_weights(tmp_path / "weights", die_on="grey")
    model = load(weights=weights, device="cpu", options={"python": sys.executable}, model="sa2va")
    try:
        with pytest.raises(RunnerError, match=r"(?s)stopped \(exit status 3\).*dies on purpose"):
            list(model.predict(job, frames))
    finally:
        model.close()


def test_it_refuses_a_missing_or_wrong_python(tmp_path: Path) -> None:
    weights = sa2va_weights(tmp_path / "weights")
    with pytest.raises(RunnerError, match="pass --option python=PATH"):
        load(weights=weights, device="cpu", options={}, model="sa2va")
    with pytest.raises(RunnerError, match="not an executable file"):
        load(weights=weights, device="cpu", options={"python": str(tmp_path / "no" / "python")}, model="sa2va")
    # A Python without the model's packages: this one, without its site-packages.
    bare = tmp_path / "bare-python"
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(0o755)
    with pytest.raises(RunnerError, match="cannot import torch, transformers, numpy, PIL"):
        load(weights=weights, device="cpu", options={"python": str(bare)}, model="sa2va")


def test_it_refuses_cuda_when_the_environment_sees_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for the child, even on a machine that has one
    weights = sa2va_weights(tmp_path / "weights")
    with pytest.raises(RunnerError, match="sees no CUDA GPU"):
        load(weights=weights, device="cuda", options={"python": sys.executable}, model="sa2va")


def test_it_refuses_a_weights_folder_without_the_model_files(tmp_path: Path) -> None:
    options = {"python": sys.executable}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunnerError, match="no readable config.json"):
        load(weights=empty, device="cpu", options=options, model="sa2va")
    with pytest.raises(RunnerError, match="needs its weights folder"):
        load(weights=tmp_path / "absent", device="cpu", options=options, model="sa2va")
    folder = sa2va_weights(tmp_path / "weights")
    (folder / "modeling_fake_sa2va.py").unlink()
    with pytest.raises(RunnerError, match="lacks modeling_fake_sa2va.py"):
        load(weights=folder, device="cpu", options=options, model="sa2va")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(RunnerError, match="lacks 1 of its 2 weight files"):
        load(weights=folder, device="cpu", options=options, model="sa2va")
    with pytest.raises(RunnerError, match="chunk option takes a number"):
        load(weights=folder, device="cpu", options={**options, "chunk": "many"}, model="sa2va")
    lisa, lisa_options = videolisa_weights(tmp_path / "lisa")
    with pytest.raises(RunnerError, match="needs the option code"):
        load(weights=lisa, device="cpu", options={"python": sys.executable}, model="videolisa")
    with pytest.raises(RunnerError, match="not a VideoLISA checkout"):
        load(weights=lisa, device="cpu", options={**lisa_options, "code": str(tmp_path)}, model="videolisa")


# --- VideoLISA -----------------------------------------------------------------------------------

def test_it_runs_videolisa_through_its_repository_code(tmp_path: Path) -> None:
    job, frames = grey_video(tmp_path / "frames", 10)
    log = tmp_path / "calls.jsonl"
    weights, options = videolisa_weights(tmp_path / "weights", call_log=str(log))
    options = {**options, "chunk": "4", "frames_sparse": "4", "frames_dense": "2"}
    model = load(weights=weights, device="cpu", options=options, model="videolisa")
    try:
        got = list(model.predict(job, frames))
    finally:
        model.close()

    # The fake's mask of frame t covers its first t + 1 rows: each mask reached its own frame.
    assert [frame for frame, _ in got] == list(job.frames)
    for t, (_, value) in enumerate(got):
        mask = rle.decode(dict(value)).astype(bool)
        assert mask.shape == (36, 64)
        assert mask[: t + 1].all() and not mask[t + 1 :].any()
    logged = calls(log)
    # Three chunks of SAM frames, each with the sparse frames of the whole video for the MLLM.
    assert [levels(entry["sam"]) for entry in logged] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(levels(entry["clip"]) == [0, 3, 5, 8] for entry in logged)
    assert all(entry["dense"] == [worker.videolisa_dense_indices(4, 2)] for entry in logged)
    assert all(entry["original"] == [36, 64] and entry["resize"] == [576, 1024] for entry in logged)


def test_it_lists_every_option_the_adapters_read_in_the_registry() -> None:
    from scoring.runners.adapters import SPECS

    for name in ("sa2va", "videolisa"):
        assert set(SPECS[name].required) | {"chunk"} <= set(get_runner(name).options)
    assert {"model_class", "frames_sparse", "frames_dense"} <= set(get_runner("videolisa").options)


def test_it_keeps_the_worker_free_of_our_package() -> None:
    """The model environment has no `scoring`: the worker may import only what it has."""
    import ast

    tree = ast.parse(Path(worker.__file__).read_text(encoding="utf-8"))
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    allowed = {"numpy", "PIL", "torch", "transformers"}
    assert roots - allowed <= set(sys.stdlib_module_names), roots - allowed - set(sys.stdlib_module_names)
    assert not any(isinstance(node, ast.ImportFrom) and node.level > 0 for node in ast.walk(tree))
