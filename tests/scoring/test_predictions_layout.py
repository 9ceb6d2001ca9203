"""Reading submissions: formats, containers, wrapping folders, junk, and what is warned about.

One hand-made ground truth of 8x10 frames with an expression in each split; expected values are
written as arithmetic (fractions in ExpressionResult.scores, percent in Evaluation.summaries).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring import evaluate, load_ground_truth, validate_submission
from scoring.errors import BadLayout

from .conftest import box, png_bytes, rle_of, write_gt, write_pred_json, write_pred_png, zip_dir

H, W = 8, 10
EMPTY = np.zeros((H, W), dtype=bool)
SHORT_FRAMES = ["00000", "00005", "00010", "00015"]
LONG_FRAMES = ["00000", "00005", "00010", "00015", "00020"]
MEDIUM_FRAMES = ["00010", "00015"]  # L1--0 is cut from the long video L1

GT_MASKS = {
    ("s1", "1"): {"00005": box(H, W, 0, 4, 0, 10), "00010": box(H, W, 2, 6, 2, 8)},  # 40 px, 24 px
    ("s1", "2"): {"00000": box(H, W, 4, 8, 0, 5)},  # 20 px
    ("L1", "7"): {"00005": box(H, W, 4, 8, 5, 10), "00015": box(H, W, 0, 4, 0, 4)},  # 20 px, 16 px
}

# The reference submission: (split, video, exp_id, obj_id) -> {frame: mask}.
PRED = {
    # METRICS.md hand check: GT on frames 1, 2; prediction on 2, 3; IoU(frame 2) = 12 / 24 = 0.5.
    ("short", "s1", "0", "1"): {"00010": box(H, W, 2, 4, 2, 8), "00015": box(H, W, 0, 2, 0, 2)},
    # exactly the ground truth
    ("short", "s1", "1", "2"): {"00000": box(H, W, 4, 8, 0, 5)},
    # frame 00015 only, half of the ground truth: 8 / 16
    ("medium", "L1--0", "0", "7"): {"00015": box(H, W, 0, 2, 0, 4)},
    # frame 00005 exactly, frame 00015 not found
    ("long", "L1", "0", "7"): {"00005": box(H, W, 4, 8, 5, 10)},
}

EXPECTED = {  # (T_recall, IoU_all, IoU_gold, IoU_gold_pred) per expression, as fractions
    ("short", "s1", "0"): (1 / 2, (1 + 0 + 0.5 + 0) / 4, (0 + 0.5) / 2, (0 + 0.5 + 0) / 3),
    ("short", "s1", "1"): (1 / 1, (1 + 1 + 1 + 1) / 4, 1 / 1, 1 / 1),
    ("medium", "L1--0", "0"): (1 / 1, (1 + 0.5) / 2, 0.5 / 1, 0.5 / 1),
    ("long", "L1", "0"): (1 / 2, (1 + 1 + 1 + 0 + 1) / 5, (1 + 0) / 2, (1 + 0) / 2),
}


def percent(*keys: tuple[str, str, str]) -> tuple[float, ...]:
    """Unweighted mean over the given expressions of EXPECTED, x100."""
    return tuple(100 * sum(EXPECTED[k][m] for k in keys) / len(keys) for m in range(4))


EXPECTED_SUMMARIES = {
    "short": percent(("short", "s1", "0"), ("short", "s1", "1")),
    "medium": percent(("medium", "L1--0", "0")),
    "long": percent(("long", "L1", "0")),
    "overall": percent(*EXPECTED),
}


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory):
    root = write_gt(
        tmp_path_factory.mktemp("layout") / "gt",
        {
            "s1": {"split": "short", "frames": SHORT_FRAMES, "expressions": {"0": "1", "1": "2"}},
            "L1": {"split": "long", "frames": LONG_FRAMES, "expressions": {"0": "7"}},
            "L1--0": {"split": "medium", "frames": MEDIUM_FRAMES, "expressions": {"0": "7"}},
        },
        GT_MASKS,
    )
    return load_ground_truth(root)


# --- builders --------------------------------------------------------------------------------


def write_submission(root: Path, preds: dict = PRED, fmt: str = "rle") -> Path:
    for (split, video, exp_id, obj_id), masks in preds.items():
        if fmt == "rle":
            write_pred_json(root, split, video, exp_id, obj_id, masks)
        else:
            write_pred_png(root, split, video, exp_id, masks)
    return root


def package(tmp_path: Path, fmt: str, container: str, wrapped: bool) -> Path:
    """The reference masks in `fmt`, as a folder or zip, with or without a wrapping folder."""
    folder = tmp_path / "pred"
    write_submission(folder / "team" if wrapped and container == "dir" else folder, fmt=fmt)
    if container == "zip":
        return zip_dir(folder, tmp_path / "pred.zip", prefix="team/" if wrapped else "")
    return folder


def scores_by_key(evaluation) -> dict[tuple[str, str, str], tuple[float, float, float, float]]:
    return {
        (r.split, r.video, r.exp_id): (r.scores.T_recall, r.scores.IoU_all, r.scores.IoU_gold, r.scores.IoU_gold_pred)
        for r in evaluation.expressions
    }


def summaries(evaluation) -> dict[str, tuple[float, ...]]:
    return {name: tuple(s.as_dict().values()) for name, s in evaluation.summaries.items()}


def flat(mapping: dict) -> dict:
    """{key: (a, b, ...)} -> {(key, 0): a, (key, 1): b, ...}, which pytest.approx can compare."""
    return {(key, i): value for key, values in mapping.items() for i, value in enumerate(values)}


def codes(evaluation) -> list[str]:
    return [w.code for w in evaluation.warnings]


def warning(evaluation, code: str):
    (found,) = [w for w in evaluation.warnings if w.code == code]
    return found


def uncompressed(mask: np.ndarray) -> dict[str, object]:
    """COCO uncompressed RLE: run lengths over the column-major pixels, zeros first."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    runs, value, length = [], False, 0
    for pixel in flat:
        if pixel == value:
            length += 1
        else:
            runs.append(length)
            value, length = pixel, 1
    runs.append(length)
    return {"size": [H, W], "counts": runs}


def png_in_mode(mask: np.ndarray, mode: str) -> bytes:
    """A PNG of `mask` in mode 1, L or P whose foreground pixel values are varied and non-zero."""
    if mode == "1":
        return png_bytes(mask, "1")
    values = np.zeros((H, W), dtype=np.uint8)
    foreground = np.flatnonzero(mask.ravel())
    values.ravel()[foreground] = np.array([1, 7, 128, 255])[np.arange(foreground.size) % 4]
    image = Image.fromarray(values, mode="L")
    if mode == "P":
        image = Image.frombytes("P", (W, H), values.tobytes())
        image.putpalette([255, 255, 255] + [0, 0, 0] * 255)  # index 0 is white: the index counts, not the colour
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == mode
    return buffer.getvalue()


# --- formats and containers ------------------------------------------------------------------


def test_it_scores_the_reference_submission_with_the_hand_computed_values(tmp_path, gt):
    result = evaluate(gt, write_submission(tmp_path / "pred"))
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)


def test_it_reports_split_and_overall_summaries_in_percent(tmp_path, gt):
    result = evaluate(gt, write_submission(tmp_path / "pred"))
    assert flat(summaries(result)) == pytest.approx(flat(EXPECTED_SUMMARIES), abs=1e-9)
    assert {name: s.n_expressions for name, s in result.summaries.items()} == {
        "short": 2, "medium": 1, "long": 1, "overall": 4,
    }


@pytest.mark.parametrize("wrapped", [False, True], ids=["flat", "wrapped"])
@pytest.mark.parametrize("container", ["dir", "zip"])
@pytest.mark.parametrize("fmt", ["rle", "png"])
def test_it_reads_every_format_container_and_wrapping_to_the_same_scores(tmp_path, gt, fmt, container, wrapped):
    result = evaluate(gt, package(tmp_path, fmt, container, wrapped))
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)
    assert result.warnings == ()
    assert result.missing == ()


def test_it_gives_bit_identical_scores_for_rle_and_png_in_zip_and_folder(tmp_path, gt):
    results = [
        evaluate(gt, package(tmp_path / f"{fmt}-{container}", fmt, container, wrapped=False))
        for fmt in ("rle", "png")
        for container in ("dir", "zip")
    ]
    assert all(scores_by_key(r) == scores_by_key(results[0]) for r in results)
    assert all(summaries(r) == summaries(results[0]) for r in results)


def test_it_accepts_uncompressed_rle_counts_equal_to_compressed(tmp_path, gt):
    preds = {key: {frame: uncompressed(mask) for frame, mask in masks.items()} for key, masks in PRED.items()}
    assert all(isinstance(m["counts"], list) for masks in preds.values() for m in masks.values())
    result = evaluate(gt, write_submission(tmp_path / "pred", preds))
    reference = evaluate(gt, write_submission(tmp_path / "ref"))
    assert scores_by_key(result) == scores_by_key(reference)


@pytest.mark.parametrize("mode", ["1", "L", "P"])
def test_it_reads_png_modes_1_l_and_p_with_any_non_zero_pixel_as_foreground(tmp_path, gt, mode):
    root = tmp_path / "pred"
    for (split, video, exp_id, _), masks in PRED.items():
        folder = root / split / video / exp_id
        folder.mkdir(parents=True)
        for frame, mask in masks.items():
            (folder / f"{frame}.png").write_bytes(png_in_mode(mask, mode))
    assert flat(scores_by_key(evaluate(gt, root))) == pytest.approx(flat(EXPECTED), abs=1e-12)


def test_it_reads_a_zip_with_folder_entries_and_a_wrapping_folder(tmp_path, gt):
    # As `zip -r` writes them: a folder entry for every folder, the wrapping one included.
    folder = write_submission(tmp_path / "pred")
    with zipfile.ZipFile(tmp_path / "pred.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("team/", b"")
        for path in sorted(folder.rglob("*")):
            name = "team/" + path.relative_to(folder).as_posix()
            archive.writestr(name + "/" if path.is_dir() else name, b"" if path.is_dir() else path.read_bytes())
    result = evaluate(gt, tmp_path / "pred.zip")
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)


# --- junk and stray files --------------------------------------------------------------------

JUNK = {
    "__MACOSX/team/short/s1/0/._00010.png": b"\x00\x05\x16\x07 resource fork",
    "__MACOSX/team/._short": b"\x00\x05\x16\x07",
    "__MACOSX/team/short/s1/1/00000.png": b"anything under __MACOSX is junk",
    "team/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "team/short/s1/0/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "team/short/s1/0/._0-1.json": b"\x00\x05\x16\x07 not json",
    "team/short/s1/1/Thumbs.db": b"\xd0\xcf\x11\xe0",
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
}


@pytest.mark.parametrize("container", ["dir", "zip"])
def test_it_ignores_macos_and_windows_junk_files(tmp_path, gt, container):
    folder = tmp_path / "pred"
    write_submission(folder / "team")
    for name, data in JUNK.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    submission = zip_dir(folder, tmp_path / "pred.zip") if container == "zip" else folder
    result = evaluate(gt, submission)
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)
    assert result.warnings == ()


def test_it_warns_about_files_outside_the_layout_and_ignores_them(tmp_path, gt):
    root = write_submission(tmp_path / "pred")
    (root / "README.txt").write_text("our method")
    (root / "short" / "s1" / "notes.txt").write_text("notes")
    (root / "short" / "s1" / "0" / "00010.txt").write_bytes(b"not read")
    result = evaluate(gt, root)
    assert codes(result) == ["ignored_files"]
    assert "3 file(s)" in warning(result, "ignored_files").message
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)


def test_it_reports_ignored_files_when_validating_without_ground_truth(tmp_path):
    root = write_submission(tmp_path / "pred")
    (root / "README.txt").write_text("our method")
    report = validate_submission(root)
    assert report.ok and [w.code for w in report.warnings] == ["ignored_files"]
    assert report.n_expressions == 4


# --- predictions the benchmark does not have -------------------------------------------------


def test_it_warns_about_an_unknown_video_and_does_not_count_it(tmp_path, gt):
    root = write_submission(tmp_path / "pred")
    write_pred_json(root, "short", "nosuch", "0", "1", {"00000": box(H, W, 0, 8, 0, 10)})
    result = evaluate(gt, root)
    assert codes(result) == ["unknown_video"]
    assert warning(result, "unknown_video").location.as_dict() == {"split": "short", "video": "nosuch"}
    assert len(result.expressions) == 4
    assert flat(summaries(result)) == pytest.approx(flat(EXPECTED_SUMMARIES), abs=1e-9)


def test_it_refuses_a_video_under_another_splits_folder_and_says_where_it_belongs(tmp_path, gt):
    # Scoring it as missing would be a silent zero for what is a misplaced folder.
    preds = {("medium" if k[1] == "s1" else k[0], *k[1:]): v for k, v in PRED.items()}
    root = write_submission(tmp_path / "pred", preds)
    with pytest.raises(BadLayout) as caught:
        evaluate(gt, root)
    assert caught.value.location.as_dict() == {"split": "medium", "video": "s1"}
    assert caught.value.message == ("video s1 belongs to the short split but its predictions are in medium/; "
                                    "move the folder to short/ (or put every video in full/)")
    assert validate_submission(root, gt=gt).errors[0].message == caught.value.message
    assert validate_submission(root).ok  # without the ground truth, nothing says s1 is a short video


def test_it_warns_about_unknown_expressions_and_does_not_count_them(tmp_path, gt):
    root = write_submission(tmp_path / "pred")
    write_pred_json(root, "short", "s1", "9", "1", {"00005": box(H, W, 0, 4, 0, 10)})
    result = evaluate(gt, root)
    assert codes(result) == ["unknown_expressions"]
    unknown = warning(result, "unknown_expressions")
    assert unknown.location.as_dict() == {"split": "short", "video": "s1"}
    assert unknown.message.endswith(": 9")
    assert flat(summaries(result)) == pytest.approx(flat(EXPECTED_SUMMARIES), abs=1e-9)


@pytest.mark.parametrize("fmt", ["rle", "png"])
def test_it_warns_about_frames_not_in_the_video_and_does_not_count_them(tmp_path, gt, fmt):
    preds = dict(PRED)
    # 00020 is in no short video; 00005 is in the long clip but not in the medium cut L1--0,
    # and the ground truth has the object there, so counting it would change every metric.
    preds[("short", "s1", "0", "1")] = {**PRED[("short", "s1", "0", "1")], "00020": box(H, W, 0, 8, 0, 10)}
    preds[("medium", "L1--0", "0", "7")] = {**PRED[("medium", "L1--0", "0", "7")], "00005": box(H, W, 4, 8, 5, 10)}
    result = evaluate(gt, write_submission(tmp_path / "pred", preds, fmt))
    found = [w for w in result.warnings if w.code == "unknown_frames"]
    assert [w.location.as_dict() for w in found] == [
        {"split": "short", "video": "s1", "expression": "0"},
        {"split": "medium", "video": "L1--0", "expression": "0"},
    ]
    assert [w.message.endswith(frame) for w, frame in zip(found, ["00020", "00005"])] == [True, True]
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)
    assert {(r.video, r.scores.n_pred) for r in result.expressions} == {("s1", 2), ("s1", 1), ("L1--0", 1), ("L1", 1)}


def test_it_warns_when_the_file_name_names_another_object_and_scores_the_expression_object(tmp_path, gt):
    preds = {(k[0], k[1], k[2], "5" if k[:3] == ("short", "s1", "0") else k[3]): v for k, v in PRED.items()}
    result = evaluate(gt, write_submission(tmp_path / "pred", preds))
    mismatch = warning(result, "obj_id_mismatch")
    assert mismatch.location.as_dict() == {"split": "short", "video": "s1", "expression": "0"}
    assert "obj_id 5" in mismatch.message and "obj_id 1" in mismatch.message
    assert flat(scores_by_key(result)) == pytest.approx(flat(EXPECTED), abs=1e-12)


# --- missing expressions and empty masks -----------------------------------------------------


def test_it_scores_missing_expressions_as_empty_and_reports_them(tmp_path, gt):
    preds = {k: v for k, v in PRED.items() if k[:3] == ("short", "s1", "0")}
    result = evaluate(gt, write_submission(tmp_path / "pred", preds))
    assert [(r.split, r.video, r.exp_id) for r in result.missing] == [
        ("short", "s1", "1"), ("medium", "L1--0", "0"), ("long", "L1", "0"),
    ]
    assert [r.missing for r in result.expressions] == [False, True, True, True]
    assert flat(scores_by_key(result)) == pytest.approx(flat({
        ("short", "s1", "0"): EXPECTED[("short", "s1", "0")],
        ("short", "s1", "1"): (0, (4 - 1) / 4, 0, 0),
        ("medium", "L1--0", "0"): (0, (2 - 1) / 2, 0, 0),
        ("long", "L1", "0"): (0, (5 - 2) / 5, 0, 0),
    }), abs=1e-12)


def test_it_warns_about_missing_expressions_once_per_split(tmp_path, gt):
    preds = {k: v for k, v in PRED.items() if k[:3] == ("short", "s1", "0")}
    result = evaluate(gt, write_submission(tmp_path / "pred", preds))
    missing = [w for w in result.warnings if w.code == "missing_expressions"]
    assert [w.location.as_dict() for w in missing] == [{"split": "short"}, {"split": "medium"}, {"split": "long"}]
    assert missing[0].message.startswith("1 of 2 expressions") and missing[0].message.endswith("s1/1")
    assert codes(result) == ["missing_expressions"] * 3


def test_it_counts_a_file_of_only_empty_masks_as_present_but_empty(tmp_path, gt):
    preds = dict(PRED)
    preds[("short", "s1", "1", "2")] = {"00000": EMPTY, "00005": None}
    result = evaluate(gt, write_submission(tmp_path / "pred", preds))
    row = next(r for r in result.expressions if (r.video, r.exp_id) == ("s1", "1"))
    assert row.missing is False
    assert (row.scores.n_pred, row.scores.T_recall, row.scores.IoU_all) == (0, 0, (4 - 1) / 4)
    assert "missing_expressions" not in codes(result)


def test_it_treats_explicit_empty_masks_and_nulls_exactly_as_omitted_frames(tmp_path, gt):
    preds = {key: dict(masks) for key, masks in PRED.items()}
    preds[("short", "s1", "0", "1")].update({"00000": EMPTY, "00005": None})
    preds[("short", "s1", "1", "2")].update({"00005": uncompressed(EMPTY), "00010": None, "00015": EMPTY})
    preds[("long", "L1", "0", "7")].update({"00015": EMPTY, "00020": None})
    padded = evaluate(gt, write_submission(tmp_path / "padded", preds))
    omitted = evaluate(gt, write_submission(tmp_path / "omitted"))
    assert scores_by_key(padded) == scores_by_key(omitted)
    assert [r.scores for r in padded.expressions] == [r.scores for r in omitted.expressions]
    assert padded.warnings == ()


def test_it_treats_all_zero_pngs_exactly_as_omitted_frames(tmp_path, gt):
    padded_root = write_submission(tmp_path / "padded", fmt="png")
    write_pred_png(padded_root, "short", "s1", "0", {"00000": EMPTY, "00005": EMPTY})
    write_pred_png(padded_root, "long", "L1", "0", {"00015": EMPTY})
    padded = evaluate(gt, padded_root)
    omitted = evaluate(gt, write_submission(tmp_path / "omitted", fmt="png"))
    assert [r.scores for r in padded.expressions] == [r.scores for r in omitted.expressions]


def test_it_reads_masks_whose_json_entries_are_in_any_order(tmp_path, gt):
    root = tmp_path / "pred"
    for (split, video, exp_id, obj_id), masks in PRED.items():
        folder = root / split / video / exp_id
        folder.mkdir(parents=True)
        body = {frame: rle_of(mask) for frame, mask in sorted(masks.items(), reverse=True)}
        (folder / f"{exp_id}-{obj_id}.json").write_text(json.dumps(body, indent=2))
    assert flat(scores_by_key(evaluate(gt, root))) == pytest.approx(flat(EXPECTED), abs=1e-12)
