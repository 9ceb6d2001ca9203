"""The synthetic benchmark generator: layout, scale, egocentric statistics, rasterisation, predictions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as cocomask

from scoring import SPLITS, evaluate, load_ground_truth, rle
from scoring.synth import SCALES, ellipse_runs, runs_from_intervals, synthesize, synthesize_predictions


def _meta(root: Path) -> dict[str, dict]:
    """Every video of the tree (from the combined meta file), each with its "subset"."""
    return json.loads((root / "meta_expressions.json").read_text())["videos"]


def _coco(rle_dict: dict) -> dict:
    return {"size": rle_dict["size"], "counts": rle_dict["counts"].encode()}


def _clip_of(video: str) -> str:
    return video.rsplit("--", 1)[0] if "--" in video else video


@pytest.fixture(scope="module")
def small_gt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("small") / "gt", scale="small", seed=0)


# --- layout and scale --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_it_writes_a_tree_that_loads_with_the_counts_of_its_scale(tmp_path, scale):
    spec = SCALES[scale]
    root = synthesize(tmp_path / "gt", scale=scale, seed=11)
    gt = load_ground_truth(root)
    assert gt.splits == SPLITS
    for split in SPLITS:
        videos = [v for v in gt.videos.values() if v.split == split]
        assert len(videos) == spec.videos[split]
        assert sum(1 for _ in gt.expressions((split,))) == spec.expressions[split]
        for video in videos:
            assert (video.height, video.width) == (spec.height, spec.width)
            low, high = spec.frames[split]
            if split == "medium":  # a window of a long video, so never longer than it
                low = min(low, len(gt.videos[video.clip].frames))
            assert low <= len(video.frames) <= high
    # The per-split meta files and the combined one describe the same videos.
    combined = _meta(root)
    for split in SPLITS:
        per_split = json.loads((root / "subset" / split / "meta_expressions.json").read_text())["videos"]
        assert per_split == {n: {k: v for k, v in video.items() if k != "subset"}
                             for n, video in combined.items() if video["subset"] == split}


def test_it_names_frames_as_zero_padded_multiples_of_five(tiny_gt):
    for video in _meta(tiny_gt).values():
        if video["subset"] != "medium":
            assert video["frames"] == [f"{5 * i:05d}" for i in range(len(video["frames"]))]


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_it_cuts_medium_videos_as_contiguous_windows_of_long_clips(tmp_path, scale):
    root = synthesize(tmp_path / "gt", scale=scale, seed=5)
    meta = _meta(root)
    gt = load_ground_truth(root)
    medium = {name: v for name, v in meta.items() if v["subset"] == "medium"}
    assert len(medium) == SCALES[scale].videos["medium"]
    for name, video in medium.items():
        match = re.fullmatch(r"(.+)--(\d+)", name)
        assert match is not None, name
        clip = match.group(1)
        assert meta[clip]["subset"] == "long"
        assert not (root / "annotations" / name).exists()  # it shares the long clip's annotations
        assert gt.videos[name].clip == clip
        long_frames = meta[clip]["frames"]
        frames = video["frames"]
        start = long_frames.index(frames[0])
        assert long_frames[start : start + len(frames)] == frames


def test_it_writes_byte_identical_trees_for_the_same_seed_only(tmp_path):
    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = tree(synthesize(tmp_path / "a", seed=4))
    b = tree(synthesize(tmp_path / "b", seed=4))
    c = tree(synthesize(tmp_path / "c", seed=5))
    assert a == b
    assert a != c


def test_it_refuses_an_unknown_scale(tmp_path):
    with pytest.raises(ValueError, match="huge"):
        synthesize(tmp_path / "gt", scale="huge")


# --- egocentric statistics (small scale, computed from the written RLE) ----------------------------


def test_it_makes_objects_visible_in_a_fraction_of_the_frames_like_the_paper(small_gt):
    fractions = []
    for name, video in _meta(small_gt).items():
        frames = video["frames"]
        for expression in video["expressions"].values():
            track = json.loads((small_gt / "annotations" / _clip_of(name) / f"{expression['obj_id']}.json").read_text())
            visible = [f for f in frames if f in track and cocomask.area(_coco(track[f])) > 0]
            assert visible, (name, expression)  # every referred object appears in its video
            fractions.append(len(visible) / len(frames))
    assert 0.10 <= float(np.mean(fractions)) <= 0.35


def test_it_makes_masks_cover_about_one_percent_of_the_frame_and_jump_between_frames(small_gt):
    meta = _meta(small_gt)
    spec = SCALES["small"]
    areas, adjacent_ious = [], []
    for path in sorted((small_gt / "annotations").glob("*/*.json")):
        clip = path.parent.name
        order = {f: i for i, f in enumerate(meta[clip]["frames"])}
        track = json.loads(path.read_text())
        assert set(track) <= set(order)
        visible = sorted(track, key=order.__getitem__)
        for frame in visible:
            assert track[frame]["size"] == [spec.height, spec.width]
            areas.append(cocomask.area(_coco(track[frame])) / (spec.height * spec.width))
        for f, g in zip(visible, visible[1:]):
            if order[g] == order[f] + 1:
                adjacent_ious.append(cocomask.iou([_coco(track[g])], [_coco(track[f])], [0])[0][0])
    assert min(areas) > 0  # annotation files list only frames where the object is visible
    assert 0.003 <= float(np.mean(areas)) <= 0.03
    assert len(adjacent_ious) > 50
    assert float(np.mean(adjacent_ious)) < 0.5


# --- frames ------------------------------------------------------------------------------------------


def test_it_renders_one_jpeg_per_frame_of_every_clip_without_changing_the_annotations(tmp_path):
    spec = SCALES["tiny"]
    with_frames = synthesize(tmp_path / "with", seed=2, frames=True)
    without = synthesize(tmp_path / "without", seed=2)
    assert not (without / "JPEGImages").exists()
    meta = _meta(with_frames)
    clips = sorted(p.name for p in (with_frames / "annotations").iterdir())
    assert sorted(p.name for p in (with_frames / "JPEGImages").iterdir()) == clips
    assert len(clips) == spec.videos["short"] + spec.videos["long"]
    for clip in clips:
        files = sorted(p.name for p in (with_frames / "JPEGImages" / clip).iterdir())
        assert files == sorted(f"{frame}.jpg" for frame in meta[clip]["frames"])
        for name in files:
            with Image.open(with_frames / "JPEGImages" / clip / name) as image:
                assert image.format == "JPEG"
                assert image.size == (spec.width, spec.height)
                assert image.mode == "RGB"
    for path in sorted((without / "annotations").rglob("*.json")):
        assert (with_frames / path.relative_to(without)).read_bytes() == path.read_bytes()
    assert (with_frames / "meta_expressions.json").read_bytes() == (without / "meta_expressions.json").read_bytes()


# --- rasterisation -----------------------------------------------------------------------------------


def _dense_ellipse(cx: float, cy: float, a: float, b: float, h: int, w: int) -> np.ndarray:
    """Pixels whose centre lies in the closed ellipse."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x + 0.5 - cx) / a) ** 2 + ((y + 0.5 - cy) / b) ** 2 <= 1.0


@pytest.mark.parametrize(
    "cx, cy, a, b, h, w",
    [
        (20.3, 11.7, 6.2, 3.9, 36, 64),  # inside the frame
        (5.5, 4.5, 2.0, 2.0, 12, 16),  # pixel centres exactly on the boundary
        (1.3, 17.2, 7.4, 5.1, 36, 64),  # clipped at the left border
        (62.1, 2.2, 4.8, 6.6, 36, 64),  # clipped at the top-right corner
        (31.9, 35.4, 10.1, 3.3, 36, 64),  # clipped at the bottom border
        (-4.0, 10.0, 5.3, 3.1, 36, 64),  # centre outside the frame, partly visible
        (30.0, 18.0, 200.0, 150.0, 36, 64),  # covers the whole frame
        (10.2, 9.7, 6.0, 0.3, 20, 20),  # thinner than a pixel: some columns empty
        (-30.0, -30.0, 3.0, 3.0, 36, 64),  # entirely outside
        (7.0, 4.0, 1.5, 1.5, 9, 11),  # the generator's minimum axis
    ],
)
def test_it_rasterises_ellipses_like_a_dense_mask(cx, cy, a, b, h, w):
    runs = ellipse_runs(cx, cy, a, b, h, w)
    assert int(runs.sum()) == h * w
    assert (runs[1:-1] > 0).all()  # canonical: no empty run inside
    decoded = rle.decode({"size": [h, w], "counts": rle.compress(runs, h, w)}).astype(bool)
    expected = _dense_ellipse(cx, cy, a, b, h, w)
    assert decoded.shape == (h, w)
    np.testing.assert_array_equal(decoded, expected)


def test_it_rasterises_random_ellipses_like_a_dense_mask():
    rng = np.random.default_rng(0)
    h, w = 27, 48
    for _ in range(200):
        cx, cy = rng.uniform(-10, w + 10), rng.uniform(-10, h + 10)
        a, b = rng.uniform(0.3, 30), rng.uniform(0.3, 30)
        runs = ellipse_runs(cx, cy, a, b, h, w)
        decoded = rle.decode({"size": [h, w], "counts": rle.compress(runs, h, w)}).astype(bool)
        np.testing.assert_array_equal(decoded, _dense_ellipse(cx, cy, a, b, h, w), err_msg=str((cx, cy, a, b)))


@pytest.mark.parametrize(
    "starts, ends, total, expected",
    [
        ([2, 4], [5, 8], 10, [2, 8 - 2, 10 - 8]),  # overlapping: [2, 8)
        ([2, 5], [5, 7], 10, [2, 7 - 2, 10 - 7]),  # touching: [2, 7)
        ([0, 6], [3, 10], 10, [0, 3, 6 - 3, 10 - 6, 0]),  # from the first pixel to the last
        ([5, 0, 2], [12, 10, 3], 12, [0, 12, 0]),  # unsorted and nested: everything
        ([6, 1], [8, 3], 10, [1, 3 - 1, 6 - 3, 8 - 6, 10 - 8]),  # unsorted, disjoint
        ([1, 2, 3], [9, 4, 5], 10, [1, 9 - 1, 10 - 9]),  # later intervals inside the first
        ([], [], 10, [10]),  # nothing
        ([4, 7], [4, 6], 10, [10]),  # only empty or reversed intervals
        ([-3, 8], [2, 15], 10, [0, 2, 8 - 2, 10 - 8, 0]),  # clipped to the line
        ([3, 3], [6, 6], 10, [3, 3, 4]),  # the same interval twice
    ],
)
def test_it_merges_intervals_into_canonical_runs(starts, ends, total, expected):
    assert runs_from_intervals(np.array(starts), np.array(ends), total).tolist() == expected


def test_it_merges_random_intervals_like_a_dense_line():
    rng = np.random.default_rng(1)
    for _ in range(300):
        total = int(rng.integers(1, 60))
        n = int(rng.integers(0, 8))
        starts = rng.integers(-5, total + 5, n)
        ends = starts + rng.integers(-2, 15, n)
        line = np.zeros(total, dtype=bool)
        for s, e in zip(starts, ends):
            line[max(0, s) : max(0, min(total, e))] = True
        runs = runs_from_intervals(starts, ends, total)
        assert int(runs.sum()) == total
        assert (runs[1:-1] > 0).all()
        rebuilt = np.repeat(np.arange(runs.size) % 2 == 1, runs)
        np.testing.assert_array_equal(rebuilt, line)


# --- predictions -------------------------------------------------------------------------------------


def _prediction_files(root: Path) -> dict[tuple[str, str, str], tuple[str, dict]]:
    out = {}
    for path in sorted(root.glob("*/*/*/*.json")):
        split, video, exp_id = path.relative_to(root).parts[:3]
        obj_id = path.stem[len(exp_id) + 1 :]
        assert path.stem == f"{exp_id}-{obj_id}"
        out[(split, video, exp_id)] = (obj_id, json.loads(path.read_text()))
    return out


def test_it_writes_perfect_predictions_identical_to_the_ground_truth(tiny_gt, tiny_predictions):
    gt = load_ground_truth(tiny_gt)
    files = _prediction_files(tiny_predictions("perfect"))
    expressions = list(gt.expressions())
    assert len(files) == len(expressions)
    for e in expressions:
        video = gt.videos[e.video]
        obj_id, body = files[(e.split, e.video, e.exp_id)]
        assert obj_id == e.obj_id
        assert {f: m["counts"] for f, m in body.items()} == gt.masks(e)
        assert all(m["size"] == [video.height, video.width] for m in body.values())


def test_it_writes_empty_predictions_with_explicit_null_and_empty_entries(tiny_gt, tiny_predictions):
    gt = load_ground_truth(tiny_gt)
    files = _prediction_files(tiny_predictions("empty"))
    assert len(files) == sum(1 for _ in gt.expressions())
    nulls = empties = 0
    for _, body in files.values():
        assert body  # explicit entries, not an empty file
        for mask in body.values():
            if mask is None:
                nulls += 1
            else:
                empties += 1
                assert cocomask.area(_coco(mask)) == 0
    assert nulls > 0 and empties > 0
    result = evaluate(gt, tiny_predictions("empty"))
    assert not result.missing
    assert all(row.scores.n_pred == 0 for row in result.expressions)


def test_it_writes_empty_png_predictions_that_score_zero(tiny_gt, tiny_predictions):
    pred = tiny_predictions("empty", "png")
    pngs = sorted(pred.rglob("*.png"))
    assert pngs
    for path in pngs:
        with Image.open(path) as image:
            assert not np.asarray(image).any()
    overall = evaluate(load_ground_truth(tiny_gt), pred).as_dict()["overall"]
    assert (overall["T_recall"], overall["IoU_gold"], overall["IoU_gold_pred"]) == (0, 0, 0)


def test_it_makes_good_predictions_score_better_than_noisy_ones(tmp_path, small_gt):
    gt = load_ground_truth(small_gt)
    scores = {}
    for quality in ("perfect", "good", "noisy"):
        pred = synthesize_predictions(small_gt, tmp_path / quality, quality=quality, seed=1)
        scores[quality] = evaluate(gt, pred).as_dict()
    for split in (*SPLITS, "overall"):
        assert scores["perfect"][split]["IoU_gold_pred"] == pytest.approx(100.0, abs=1e-9)
        assert scores["good"][split]["IoU_gold_pred"] > scores["noisy"][split]["IoU_gold_pred"]
        assert scores["good"][split]["T_recall"] > scores["noisy"][split]["T_recall"]
    assert scores["good"]["overall"]["IoU_gold_pred"] < 100.0


def test_it_writes_the_same_masks_in_rle_png_and_zip_form(tmp_path, tiny_gt):
    gt = load_ground_truth(tiny_gt)
    as_rle = synthesize_predictions(tiny_gt, tmp_path / "rle", quality="noisy", fmt="rle", seed=9)
    as_png = synthesize_predictions(tiny_gt, tmp_path / "png", quality="noisy", fmt="png", seed=9)
    as_zip = synthesize_predictions(tiny_gt, tmp_path / "pred.zip", quality="noisy", fmt="rle", seed=9)
    assert as_zip.is_file()
    expected = evaluate(gt, as_rle).as_dict()
    assert evaluate(gt, as_png).as_dict() == expected
    assert evaluate(gt, as_zip).as_dict() == expected


def test_it_refuses_an_unknown_quality_or_format(tmp_path, tiny_gt):
    with pytest.raises(ValueError, match="superb"):
        synthesize_predictions(tiny_gt, tmp_path / "a", quality="superb")
    with pytest.raises(ValueError, match="format"):
        synthesize_predictions(tiny_gt, tmp_path / "b", fmt="jpeg")
