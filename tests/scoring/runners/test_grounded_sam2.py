"""The Grounded-SAM2 runner: the paper's protocol (caption, key frame, box clipping, backward then
forward propagation), its plain-torch transforms against transformers' processors, and the real
runner end to end from tiny random models saved on disk, on the tiny synthetic benchmark's frames.

The tiny models are random, so their boxes and masks are noise: where an assertion is about the
protocol, a fake detector with chosen per-frame scores drives the real SAM2 tracker instead.
"""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scoring import evaluate, load_ground_truth, validate_submission
from scoring.runners import Job, RunnerError, get_runner, load_jobs, run
from scoring.runners import grounded_sam2 as gsam2
from scoring.runners import gsam2_inputs as inputs
from scoring.runners.base import Frames, frames_root
from scoring.synth import synthesize

from .tiny_models import DINO_LONGEST_EDGE, DINO_SHORTEST_EDGE, SAM2_IMAGE_SIZE, build_tiny_weights

torch = pytest.importorskip("torch", reason="the [runners] extra (torch, transformers) is not installed")
pytest.importorskip("transformers", reason="the [runners] extra (torch, transformers) is not installed")

# The paper's thresholds (0.35). The tiny detector's random scores sit between 0.6 and 0.85, so
# every frame passes and the most confident frame is not always the first.
PAPER: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine, two threads spin against each other and the
    frame-reading thread (measured: 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return build_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("bench"), scale="tiny", frames=True)


@pytest.fixture(scope="module")
def jobs(bench) -> list[Job]:
    return load_jobs(bench / "meta_expressions.json")


@pytest.fixture(scope="module")
def model(weights) -> gsam2.GroundedSam2:
    loaded = gsam2.load(weights=weights, device="cpu", options=PAPER, key_frame="best")
    yield loaded
    loaded.close()


def _frames(bench: Path, job: Job) -> Frames:
    return Frames(frames_root(bench), job)


def _long_job(jobs: list[Job]) -> Job:
    return max(jobs, key=lambda job: len(job.frames))


# --- the protocol, piece by piece ----------------------------------------------------------------

def test_it_imports_without_importing_torch():
    code = ("import sys, scoring.runners.grounded_sam2, scoring.runners.gsam2_inputs; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_it_makes_the_official_caption():
    assert gsam2.caption("The Red mug. On the left.") == "the red mug;on the left."
    assert gsam2.caption("the knife the person picks up") == "the knife the person picks up."


def test_it_keeps_the_most_confident_detection_and_the_earliest_of_equals():
    found = [None, gsam2.Detection(1, 0.5, (0, 0, 1, 1)), gsam2.Detection(2, 0.9, (0, 0, 2, 2)),
             gsam2.Detection(3, 0.9, (0, 0, 3, 3)), None]
    assert gsam2.choose_key_frame(found, "best") == found[2]
    assert gsam2.choose_key_frame(found, "first") == found[1]
    assert gsam2.choose_key_frame([None, None], "best") is None


def test_it_stops_scoring_frames_at_the_first_detection_for_the_naive_init():
    def detections():
        yield None
        yield gsam2.Detection(1, 0.4, (0, 0, 1, 1))
        raise AssertionError("frames after the first detection were scored")

    assert gsam2.choose_key_frame(detections(), "first").frame == 1


def test_it_clips_boxes_to_the_frame():
    assert gsam2.clip_box((-5.0, 3.0, 70.5, 40.0), 36, 64) == (0.0, 3.0, 64.0, 36.0)


class FakeDetector:
    """Chosen scores per frame (None: nothing passes the threshold), a fixed box that reaches past
    the frame's edges (as Grounding DINO's may)."""

    def __init__(self, scores: list[float | None]) -> None:
        self.scores = scores
        self.captions: list[str] = []

    def detect(self, text, frames):
        self.captions.append(text)
        assert len(frames) == len(self.scores)
        for index, score in enumerate(self.scores):
            yield None if score is None else gsam2.Detection(index, score, gsam2.clip_box((-4, 2, 90, 50), 36, 64))


class Spy:
    """Wraps SAM2's propagate_in_video_iterator: which passes ran, from where, which way."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []
        self.config = model.config

    def propagate_in_video_iterator(self, session, **kwargs):
        self.calls.append((kwargs["start_frame_idx"], kwargs["reverse"]))
        return self.model.propagate_in_video_iterator(session, **kwargs)


@pytest.mark.parametrize("key_frame, expected_key", [("best", 5), ("first", 2)])
def test_it_prompts_sam2_at_the_key_frame_and_segments_every_frame_once_backward_then_forward(
        model, bench, jobs, key_frame, expected_key):
    job = next(j for j in jobs if len(j.frames) >= 8)
    scores = [None, None, 0.4, 0.5, 0.2, 0.8, 0.8, *([0.1] * (len(job.frames) - 7))]
    spy = Spy(model.tracker.model)
    tracker = gsam2.Sam2Tracker(spy, device="cpu", pool=model.pool)
    runner = gsam2.GroundedSam2(FakeDetector(scores), tracker, key_frame=key_frame)
    frames = _frames(bench, job)
    chosen = gsam2.choose_key_frame(runner.detector.detect("x.", frames), key_frame)
    assert chosen.frame == expected_key
    segmented = list(tracker.track(frames, chosen))
    order = [index for index, _ in segmented]
    assert order == [*range(expected_key, -1, -1), *range(expected_key + 1, len(job.frames))]
    assert sorted(order) == list(range(len(job.frames)))
    assert spy.calls == [(expected_key, True), (expected_key, False)]
    height, width = frames.read(0).shape[:2]
    assert all(mask.shape == (height, width) and mask.dtype == bool for _, mask in segmented)
    # predict writes the non-empty ones, named by frame, at most once each.
    predicted = list(runner.predict(job, frames))
    assert runner.detector.captions[-1] == gsam2.caption(job.expression)
    assert runner.key_frames[job.relative_path].frame == expected_key
    names = [name for name, _ in predicted]
    assert len(names) == len(set(names)) and set(names) <= set(job.frames)
    assert names == [job.frames[i] for i, mask in segmented if mask.any()]


def test_it_runs_only_the_forward_pass_when_the_key_frame_is_the_first(model, bench, jobs):
    job = jobs[0]
    spy = Spy(model.tracker.model)
    tracker = gsam2.Sam2Tracker(spy, device="cpu", pool=model.pool)
    order = [i for i, _ in tracker.track(_frames(bench, job), gsam2.Detection(0, 0.9, (1.0, 1.0, 30.0, 20.0)))]
    assert order == list(range(len(job.frames)))
    assert spy.calls == [(0, False)]


def test_it_writes_no_mask_when_nothing_is_detected(model, bench, jobs):
    class NoTracker:
        def track(self, frames, detection):
            raise AssertionError("SAM2 ran without a detection")

    runner = gsam2.GroundedSam2(FakeDetector([None] * len(jobs[0].frames)), NoTracker(), key_frame="best")
    assert list(runner.predict(jobs[0], _frames(bench, jobs[0]))) == []
    assert runner.key_frames[jobs[0].relative_path] is None


def test_it_forgets_old_frame_memories_without_changing_the_masks(model, bench, jobs):
    job = _long_job(jobs)
    assert len(job.frames) > model.tracker.lookback + 8  # long enough for forgetting to matter
    held: list[int] = []

    class Counting(gsam2.Sam2Tracker):
        @staticmethod
        def _forget(session, index):
            gsam2.Sam2Tracker._forget(session, index)
            held.append(max(len(o["non_cond_frame_outputs"]) for o in session.output_dict_per_obj.values()))

    key = gsam2.Detection(2, 0.9, (5.0, 5.0, 40.0, 30.0))
    frames = _frames(bench, job)
    pruned = list(Counting(model.tracker.model, device="cpu", pool=model.pool).track(frames, key))
    kept = list(gsam2.Sam2Tracker(model.tracker.model, device="cpu", pool=model.pool, prune=False).track(frames, key))
    assert [i for i, _ in pruned] == [i for i, _ in kept]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(pruned, kept))
    assert max(held) <= model.tracker.lookback < len(job.frames) - 3


# --- the plain-torch transforms against transformers' own ------------------------------------------

def test_it_sizes_frames_for_grounding_dino_as_transformers_does():
    from transformers.image_transforms import get_size_with_aspect_ratio

    for height, width in [(1080, 1920), (1920, 1080), (36, 64), (480, 640), (800, 800), (799, 1500), (600, 3000)]:
        for shortest, longest in [(800, 1333), (64, 128)]:
            assert inputs.dino_size(height, width, shortest, longest) == get_size_with_aspect_ratio(
                (height, width), shortest, longest)


def test_it_preprocesses_like_grounding_dinos_processor(weights, bench, jobs):
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(str(weights / "grounding-dino"), local_files_only=True)
    images = [_frames(bench, jobs[0]).read(i) for i in range(2)]
    rng = np.random.default_rng(0)
    images.append(rng.integers(0, 256, size=(300, 500, 3), dtype=np.uint8))  # a downscale, with antialiasing
    expected = processor(images=images, return_tensors="pt")
    values, mask = inputs.dino_pixels(images, inputs.dino_input_spec(weights / "grounding-dino"), "cpu")
    assert values.shape == expected["pixel_values"].shape
    assert torch.equal(mask, expected["pixel_mask"].long())
    assert inputs.dino_input_spec(weights / "grounding-dino") == inputs.DinoInputSpec(
        DINO_SHORTEST_EDGE, DINO_LONGEST_EDGE)
    # PIL's and torch's antialiased bilinear filters round differently by a grey level or so.
    difference = (values - expected["pixel_values"]).abs()
    assert float(difference.mean()) < 0.01 and float(difference.max()) < 0.2


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="SAM2's image and video processors need torchvision, which is not installed beside "
                           "this CPU torch; the runner does their work in plain torch for that reason")
def test_it_preprocesses_and_postprocesses_like_sam2s_processors(weights, bench, jobs):
    from transformers import Sam2VideoInferenceSession, Sam2VideoProcessor

    processor = Sam2VideoProcessor.from_pretrained(str(weights / "sam2"), local_files_only=True)
    image = _frames(bench, jobs[0]).read(0)
    height, width = image.shape[:2]
    processed = processor.video_processor(videos=[image[None]], return_tensors="pt")
    ours = inputs.sam2_pixels(image, processor.video_processor.size["height"], "cpu")
    assert ours.shape == processed["pixel_values_videos"][0, 0].shape
    assert float((ours - processed["pixel_values_videos"][0, 0]).abs().max()) < 0.02
    session = Sam2VideoInferenceSession(video_height=height, video_width=width, dtype=torch.float32)
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_boxes=[[[3.0, 4.0, 50.0, 30.0]]])
    theirs = session.point_inputs_per_obj[0][0]
    prompt = inputs.sam2_box_prompt((3.0, 4.0, 50.0, 30.0), height, width, processor.target_size, "cpu")
    assert torch.allclose(prompt["point_coords"], theirs["point_coords"])
    assert torch.equal(prompt["point_labels"], theirs["point_labels"].int())
    logits = torch.randn(1, 1, SAM2_IMAGE_SIZE // 4, SAM2_IMAGE_SIZE // 4)
    expected = processor.video_processor.post_process_masks([logits], [[height, width]], [[SAM2_IMAGE_SIZE] * 2])
    assert np.array_equal(inputs.frame_mask(logits[0], SAM2_IMAGE_SIZE, height, width), expected[0][0, 0].numpy())


def test_it_turns_a_box_into_sam2s_corner_points_in_its_input_coordinates():
    prompt = inputs.sam2_box_prompt((16.0, 9.0, 48.0, 27.0), 36, 64, 1024, "cpu")
    assert prompt["point_coords"].tolist() == [[[[256.0, 256.0], [768.0, 768.0]]]]
    assert prompt["point_labels"].tolist() == [[[2, 3]]]


def test_it_upsamples_low_resolution_logits_to_the_frame_and_thresholds_at_zero():
    logits = torch.full((1, 16, 16), -5.0)
    logits[:, :8, :] = 5.0  # the top half
    mask = inputs.frame_mask(logits, 64, 36, 64)
    assert mask.shape == (36, 64) and mask.dtype == bool
    assert mask[:17].all() and not mask[19:].any()


# --- the real runner, end to end -----------------------------------------------------------------

def test_it_produces_a_submission_that_validates_and_scores(weights, bench, jobs, tmp_path):
    report = run(get_runner("grounded-sam2"), jobs=jobs, frames=bench / "JPEGImages", out=tmp_path / "gsam2.zip",
                 weights=weights, options=PAPER)
    assert report.expressions == len(jobs) and report.masks > 0
    assert validate_submission(tmp_path / "gsam2.zip").ok
    result = evaluate(load_ground_truth(bench), tmp_path / "gsam2.zip")
    assert not result.missing and set(result.summaries) >= {"short", "medium", "long", "overall"}
    with zipfile.ZipFile(tmp_path / "gsam2.zip") as archive:
        assert sorted(archive.namelist()) == sorted(job.relative_path for job in jobs)


def test_it_resumes_computing_only_the_expressions_not_yet_written(weights, bench, jobs, tmp_path):
    runner = get_runner("grounded-sam2")
    calls: list[str] = []
    model = runner.load

    def counting_load(**kwargs):
        loaded = model(**kwargs)
        predict = loaded.predict

        def counted(job, frames):
            calls.append(job.relative_path)
            return predict(job, frames)

        loaded.predict = counted
        return loaded

    counted_runner = type(runner)(**{**runner.__dict__, "load": counting_load})

    def interrupt(state):
        if state.done_expressions == 3:
            raise KeyboardInterrupt

    out = tmp_path / "resumed.zip"
    with pytest.raises(KeyboardInterrupt):
        run(counted_runner, jobs=jobs, frames=bench, out=out, weights=weights, options=PAPER, progress=interrupt)
    assert calls == [job.relative_path for job in jobs[:3]]
    report = run(counted_runner, jobs=jobs, frames=bench, out=out, weights=weights, options=PAPER)
    assert report.skipped_expressions == 3
    assert calls[3:] == [job.relative_path for job in jobs[3:]]
    # Random but deterministic models: the resumed zip is the uninterrupted run's, byte for byte.
    run(runner, jobs=jobs, frames=bench, out=tmp_path / "whole.zip", weights=weights, options=PAPER)
    assert filecmp.cmp(out, tmp_path / "whole.zip", shallow=False)


def test_it_splits_into_shards_that_cover_every_expression_once(weights, bench, jobs, tmp_path):
    runner = get_runner("grounded-sam2-naive")
    written = []
    for index in range(2):
        run(runner, jobs=jobs, frames=bench, out=tmp_path / f"shard{index}", weights=weights, options=PAPER,
            shard_of=(index, 2))
        written.append({p.relative_to(tmp_path / f"shard{index}").as_posix()
                        for p in (tmp_path / f"shard{index}").rglob("*.json") if not p.name.startswith(".")})
    assert written[0] and written[1] and not written[0] & written[1]
    assert written[0] | written[1] == {job.relative_path for job in jobs}


def test_it_starts_the_naive_variant_from_the_first_frame_with_a_detection(model, weights, bench, jobs):
    naive = gsam2.load(weights=weights, device="cpu", options=PAPER, key_frame="first")
    try:
        job = _long_job(jobs)
        assert list(naive.predict(job, _frames(bench, job)))
        assert naive.key_frames[job.relative_path].frame == 0  # every frame passes 0.35
    finally:
        naive.close()
    best = [gsam2.choose_key_frame(model.detector.detect(gsam2.caption(j.expression), _frames(bench, j)), "best")
            for j in jobs]
    assert any(detection.frame > 0 for detection in best)  # so the two variants do differ here
    strict = gsam2.load(weights=weights, device="cpu", options={"box_threshold": "0.95"})
    try:
        assert list(strict.predict(job, _frames(bench, job))) == []
        assert strict.key_frames[job.relative_path] is None
    finally:
        strict.close()


# --- what the user can fix -------------------------------------------------------------------------

def test_it_names_the_missing_weights_folder_and_what_to_download(weights, tmp_path):
    with pytest.raises(RunnerError, match="does not exist"):
        gsam2.load(weights=tmp_path / "nowhere", device="cpu", options={})
    partial = tmp_path / "partial"
    (partial / "grounding-dino").mkdir(parents=True)
    with pytest.raises(RunnerError, match=r"no grounding-dino/ sub-folder|has no config\.json") as caught:
        gsam2.load(weights=partial, device="cpu", options={})
    assert "hf download IDEA-Research/grounding-dino-tiny" in str(caught.value)
    (partial / "grounding-dino" / "config.json").write_text((weights / "grounding-dino" / "config.json").read_text())
    with pytest.raises(RunnerError, match=r"has no sam2/ sub-folder.*hf download facebook/sam2\.1"):
        gsam2.load(weights=partial, device="cpu", options={})


def test_it_refuses_cuda_on_a_machine_without_a_gpu(weights, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RunnerError, match="CUDA was asked for but this machine has no GPU"):
        gsam2.load(weights=weights, device="cuda", options={})


@pytest.mark.parametrize("option, value", [("box_threshold", "high"), ("text_threshold", "1.5"),
                                           ("batch_size", "0"), ("batch_size", "2.5")])
def test_it_refuses_bad_option_values_in_one_sentence(weights, option, value):
    with pytest.raises(RunnerError, match=f"{option} is .*not '{value}'"):
        gsam2.load(weights=weights, device="cpu", options={option: value})
