"""The `egomask` command line, end to end, as a real subprocess on the tiny synthetic benchmark."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scoring import METRICS, SPLITS, evaluate, load_ground_truth, rle
from scoring.synth import SCALES

from .conftest import box, write_gt, write_pred_json, zip_dir

SUMMARY_KEYS = {*SPLITS, "overall"}
TINY_EXPRESSIONS = sum(SCALES["tiny"].expressions.values())


def egomask(*args: object, cwd: Path | None = None, script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter (or the installed console script)."""
    if script:  # noqa: SIM108
        command = [str(Path(sys.executable).parent / "egomask")]
    else:
        command = [sys.executable, "-m", "scoring.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60)


def eval_json(gt: Path, pred: Path, *extra: object) -> dict[str, dict[str, float]]:
    done = egomask("eval", "--gt", gt, "--pred", pred, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_same_numbers(got: dict[str, dict[str, float]], expected: dict[str, dict[str, float]]) -> None:
    assert set(got) == set(expected)
    for split, values in expected.items():
        assert set(got[split]) == set(METRICS)
        for name, value in values.items():
            assert isinstance(got[split][name], float), (split, name, got[split][name])
            assert got[split][name] == pytest.approx(value, abs=1e-9), (split, name)


def assert_one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("egomask: error: ") and len(lines[0]) > len("egomask: error: ")
    return lines[0]


def copy_of(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- eval ----------------------------------------------------------------------------------------


def test_it_prints_exactly_one_json_object_equal_to_the_library(tiny_gt, tiny_predictions):
    pred = tiny_predictions("good")
    done = egomask("eval", "--gt", tiny_gt, "--pred", pred, "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert set(got) == SUMMARY_KEYS
    expected = evaluate(load_ground_truth(tiny_gt), pred).as_dict()
    assert_same_numbers(got, expected)
    # Full precision, not the table's two decimals: the good predictions do not score round numbers.
    assert any(abs(v - round(v, 2)) > 1e-6 for split in got.values() for v in split.values())


def test_it_prints_the_same_json_from_the_installed_console_script(tiny_gt, tiny_predictions):
    pred = tiny_predictions("good")
    via_script = egomask("eval", "--gt", tiny_gt, "--pred", pred, "--json", script=True)
    via_module = egomask("eval", "--gt", tiny_gt, "--pred", pred, "--json")
    assert via_script.returncode == 0, via_script.stderr
    assert via_script.stdout == via_module.stdout
    assert set(json.loads(via_script.stdout)) == SUMMARY_KEYS


def test_it_keeps_warnings_on_stderr_and_stdout_one_json_object(tmp_path, tiny_gt, tiny_predictions):
    gt = load_ground_truth(tiny_gt)
    pred = copy_of(tiny_predictions("good"), tmp_path / "pred")
    gone = next(gt.expressions(("short",)))
    shutil.rmtree(pred / gone.split / gone.video / gone.exp_id)
    done = egomask("eval", "--gt", tiny_gt, "--pred", pred, "--json")
    assert done.returncode == 0, done.stderr
    assert_same_numbers(json.loads(done.stdout), evaluate(gt, pred).as_dict())
    warnings = done.stderr.splitlines()
    assert warnings and all(line.startswith("warning: ") for line in warnings)
    assert f"{gone.video}/{gone.exp_id}" in done.stderr


def test_it_scores_one_split_when_asked(tiny_gt, tiny_predictions):
    pred = tiny_predictions("good")
    got = eval_json(tiny_gt, pred, "--split", "short")
    assert set(got) == {"short"}
    assert_same_numbers(got, evaluate(load_ground_truth(tiny_gt), pred, split="short").as_dict())


def test_it_scores_perfect_predictions_100_everywhere(tiny_gt, tiny_predictions):
    got = eval_json(tiny_gt, tiny_predictions("perfect"))
    assert set(got) == SUMMARY_KEYS
    for split in got.values():
        for value in split.values():
            assert value == pytest.approx(100.0, abs=1e-9)


def test_it_scores_empty_predictions_zero_except_on_background_frames(tiny_gt, tiny_predictions):
    got = eval_json(tiny_gt, tiny_predictions("empty"))
    gt = load_ground_truth(tiny_gt)
    # With nothing predicted, IoU_all is the share of frames where the object is absent.
    background = {s: [1 - len(gt.masks(e)) / len(gt.videos[e.video].frames) for e in gt.expressions((s,))]
                  for s in SPLITS}
    background["overall"] = [f for s in SPLITS for f in background[s]]
    assert set(got) == SUMMARY_KEYS
    for split, values in got.items():
        assert values["T_recall"] == 0
        assert values["IoU_gold"] == 0
        assert values["IoU_gold_pred"] == 0
        assert values["IoU_all"] == pytest.approx(100 * sum(background[split]) / len(background[split]), abs=1e-9)


@pytest.mark.parametrize("prefix", ["", "my-submission/"])
def test_it_scores_a_zip_like_the_folder_it_was_made_from(tmp_path, tiny_gt, tiny_predictions, prefix):
    pred = tiny_predictions("good")
    archive = zip_dir(pred, tmp_path / "pred.zip", prefix=prefix)
    assert eval_json(tiny_gt, archive) == eval_json(tiny_gt, pred)


def test_it_prints_a_table_with_the_splits_and_metrics(tiny_gt, tiny_predictions):
    done = egomask("eval", "--gt", tiny_gt, "--pred", tiny_predictions("good"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "split"
    assert all(name in header for name in METRICS)
    first_cells = [line.split()[0] for line in lines if line.strip()]
    for split in (*SPLITS, "overall"):
        assert split in first_cells
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout)


def test_it_writes_one_csv_row_per_expression(tmp_path, tiny_gt, tiny_predictions):
    pred = tiny_predictions("good")
    out = tmp_path / "rows.csv"
    got = eval_json(tiny_gt, pred, "--per-expression", out)
    assert set(got) == SUMMARY_KEYS  # the CSV does not disturb the JSON on stdout
    result = evaluate(load_ground_truth(tiny_gt), pred)
    with open(out, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == list(result.expressions[0].as_row())
    assert len(rows) == TINY_EXPRESSIONS == len(result.expressions)
    for row, expected in zip(rows, result.expressions):
        want = expected.as_row()
        assert (row["split"], row["video"], row["exp_id"], row["obj_id"]) == (
            want["split"], want["video"], want["exp_id"], want["obj_id"])
        for name in ("missing", "n_frames", "n_gt", "n_pred", "n_hit"):
            assert int(row[name]) == want[name]
        for name in METRICS:
            assert float(row[name]) == pytest.approx(want[name], abs=1e-12)
    assert {row["split"] for row in rows} == set(SPLITS)


# --- eval: invalid input, exit 2 with one line on stderr ------------------------------------------------


@pytest.mark.parametrize("name, content", [("pred.zip", b"this is not a zip"), ("pred.tar.gz", b"\x1f\x8b\x08\x00")])
def test_it_refuses_a_submission_that_is_not_a_zip(tmp_path, tiny_gt, name, content):
    (tmp_path / name).write_bytes(content)
    line = assert_one_error_line(egomask("eval", "--gt", tiny_gt, "--pred", tmp_path / name))
    assert "zip" in line


def test_it_refuses_a_missing_submission(tmp_path, tiny_gt):
    assert_one_error_line(egomask("eval", "--gt", tiny_gt, "--pred", tmp_path / "nothing-here.zip"))


def test_it_refuses_malformed_rle_in_one_line(tmp_path, tiny_gt, tiny_predictions):
    gt = load_ground_truth(tiny_gt)
    pred = copy_of(tiny_predictions("good"), tmp_path / "pred")
    broken = list(gt.expressions(("short",)))[:2]
    for e in broken:
        video = gt.videos[e.video]
        # Run lengths adding up to 10 pixels on a height x width frame.
        bad = {"size": [video.height, video.width], "counts": rle.compress([4, 6], video.height, video.width)}
        (path,) = (pred / e.split / e.video / e.exp_id).glob("*.json")
        path.write_text(json.dumps({video.frames[0]: bad}))
    line = assert_one_error_line(egomask("eval", "--gt", tiny_gt, "--pred", pred))
    assert "RLE" in line
    assert "1 more problem" in line


def test_it_refuses_a_zip_with_malformed_rle_in_one_line(tmp_path, tiny_gt):
    gt = load_ground_truth(tiny_gt)
    e = next(gt.expressions(("long",)))
    video = gt.videos[e.video]
    folder = tmp_path / "pred"
    write_pred_json(folder, e.split, e.video, e.exp_id, e.obj_id,
                    {video.frames[0]: {"size": [video.height, video.width], "counts": "not-rle-at-all-\x7f"}})
    archive = zip_dir(folder, tmp_path / "pred.zip")
    line = assert_one_error_line(egomask("eval", "--gt", tiny_gt, "--pred", archive))
    assert "RLE" in line


def test_it_refuses_a_missing_ground_truth_folder(tmp_path, tiny_predictions):
    line = assert_one_error_line(egomask("eval", "--gt", tmp_path / "no-gt", "--pred", tiny_predictions("good")))
    assert "ground truth" in line


@pytest.mark.parametrize("damage", ["meta_not_json", "annotation_deleted", "annotation_not_json", "no_meta"])
def test_it_refuses_a_broken_ground_truth_folder(tmp_path, tiny_gt, tiny_predictions, damage):
    gt = copy_of(tiny_gt, tmp_path / "gt")
    if damage == "meta_not_json":
        (gt / "subset" / "short" / "meta_expressions.json").write_text('{"videos": ')
    elif damage == "annotation_deleted":
        for path in (gt / "annotations").glob("short_*/*.json"):
            path.unlink()
    elif damage == "annotation_not_json":
        for path in (gt / "annotations").glob("long_*/*.json"):
            path.write_text("garbage")
    else:
        shutil.rmtree(gt / "subset")
        (gt / "meta_expressions.json").unlink()
    line = assert_one_error_line(egomask("eval", "--gt", gt, "--pred", tiny_predictions("good")))
    assert "ground truth" in line


def test_it_refuses_a_split_the_ground_truth_does_not_have(tmp_path):
    frames = ["00000", "00005"]
    gt = write_gt(tmp_path / "gt", {"v": {"split": "short", "frames": frames, "expressions": {"0": "1"}}},
                  {("v", "1"): {"00000": box(4, 4, 0, 2, 0, 2)}})
    pred = tmp_path / "pred"
    write_pred_json(pred, "short", "v", "0", "1", {"00000": box(4, 4, 0, 2, 0, 2)})
    assert set(eval_json(gt, pred)) == {"short", "overall"}
    line = assert_one_error_line(egomask("eval", "--gt", gt, "--pred", pred, "--split", "long"))
    assert "long" in line


# --- validate ------------------------------------------------------------------------------------


def test_it_validates_a_good_submission_without_ground_truth(tmp_path, tiny_predictions):
    pred = tiny_predictions("good")
    for submission in (pred, zip_dir(pred, tmp_path / "pred.zip")):
        done = egomask("validate", "--pred", submission)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "error" not in done.stdout
        assert done.stdout.splitlines()[-1].startswith(f"valid: {TINY_EXPRESSIONS} expression(s)")


def _two_broken_expressions(tmp_path: Path, tiny_gt: Path, pred: Path) -> tuple[Path, list]:
    gt = load_ground_truth(tiny_gt)
    pred = copy_of(pred, tmp_path / "pred")
    first, second = list(gt.expressions(("medium",)))[:2]
    (path,) = (pred / first.split / first.video / first.exp_id).glob("*.json")
    path.write_text("{this is not json")
    video = gt.videos[second.video]
    (path,) = (pred / second.split / second.video / second.exp_id).glob("*.json")
    path.write_text(json.dumps({video.frames[0]: {"size": [video.height], "counts": "abc"}}))
    return pred, [first, second]


def test_it_lists_every_problem_of_a_submission_and_exits_1(tmp_path, tiny_gt, tiny_predictions):
    pred, broken = _two_broken_expressions(tmp_path, tiny_gt, tiny_predictions("good"))
    done = egomask("validate", "--pred", pred)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    for e in broken:
        assert sum(f"video {e.video}, expression {e.exp_id}" in line for line in errors) == 1
    assert "INVALID (2 problem(s))" in done.stdout
    # With the ground truth, the same submission is refused for the same two problems.
    with_gt = egomask("validate", "--gt", tiny_gt, "--pred", pred)
    assert with_gt.returncode == 1
    assert [line for line in with_gt.stdout.splitlines() if line.startswith("error: ")] == errors


def test_it_reports_validation_as_json(tmp_path, tiny_gt, tiny_predictions):
    good = egomask("validate", "--pred", tiny_predictions("good"), "--json")
    assert good.returncode == 0
    report = json.loads(good.stdout)
    assert {"ok", "errors", "warnings"} <= set(report)
    assert report["ok"] is True and report["errors"] == [] and isinstance(report["warnings"], list)

    pred, broken = _two_broken_expressions(tmp_path, tiny_gt, tiny_predictions("good"))
    bad = egomask("validate", "--pred", pred, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert len(report["errors"]) == 2
    assert sorted(err["location"]["expression"] for err in report["errors"]) == sorted(e.exp_id for e in broken)
    assert {err["code"] for err in report["errors"]} == {"malformed_json", "malformed_rle"}


def test_it_warns_about_missing_expressions_when_validating_against_ground_truth(tmp_path, tiny_gt, tiny_predictions):
    gt = load_ground_truth(tiny_gt)
    pred = copy_of(tiny_predictions("good"), tmp_path / "pred")
    gone = list(gt.expressions(("short",)))[:2]
    for e in gone:
        shutil.rmtree(pred / e.split / e.video / e.exp_id)
    done = egomask("validate", "--gt", tiny_gt, "--pred", pred)
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    assert warnings
    for e in gone:
        assert f"{e.video}/{e.exp_id}" in done.stdout
    assert done.stdout.splitlines()[-1].startswith(f"valid: {TINY_EXPRESSIONS - 2} expression(s)")

    as_json = egomask("validate", "--gt", tiny_gt, "--pred", pred, "--json")
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert report["ok"] is True and report["errors"] == []
    missing = [w for w in report["warnings"] if w["code"] == "missing_expressions"]
    assert len(missing) == 1 and missing[0]["location"] == {"split": "short"}


# --- synth and synth-predict ---------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_it_synthesizes_byte_identical_trees_for_the_same_seed(tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        done = egomask("synth", tmp_path / name, "--scale", "tiny", "--seed", seed)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("wrote ")
        runs[name] = _tree(tmp_path / name)
    assert runs["a"] and runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    gt = load_ground_truth(tmp_path / "a")
    assert sum(1 for _ in gt.expressions()) == TINY_EXPRESSIONS


def test_it_synthesizes_png_predictions_that_eval_scores(tmp_path, tiny_gt):
    rle_dir, png_dir = tmp_path / "rle", tmp_path / "png"
    for out, fmt in ((rle_dir, "rle"), (png_dir, "png")):
        done = egomask("synth-predict", tiny_gt, out, "--quality", "good", "--format", fmt, "--seed", 5)
        assert done.returncode == 0, done.stderr
    assert list(png_dir.rglob("*.png")) and not list(png_dir.rglob("*.json"))
    got = eval_json(tiny_gt, png_dir)
    assert set(got) == SUMMARY_KEYS
    assert_same_numbers(got, evaluate(load_ground_truth(tiny_gt), png_dir).as_dict())
    assert got == eval_json(tiny_gt, rle_dir)  # the same masks, written the other way
    assert 0 < got["overall"]["IoU_gold_pred"] < 100


def test_it_synthesizes_predictions_into_a_zip(tmp_path, tiny_gt):
    archive = tmp_path / "out" / "pred.zip"
    archive.parent.mkdir()
    done = egomask("synth-predict", tiny_gt, archive, "--quality", "good", "--seed", 5, script=True)
    assert done.returncode == 0, done.stderr
    assert zipfile.is_zipfile(archive)
    assert sorted(p.name for p in archive.parent.iterdir()) == ["pred.zip"]
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert len(names) == TINY_EXPRESSIONS
    assert all(name.split("/")[0] in SPLITS and name.endswith(".json") for name in names)
    folder = tmp_path / "folder"
    assert egomask("synth-predict", tiny_gt, folder, "--quality", "good", "--seed", 5).returncode == 0
    assert eval_json(tiny_gt, archive) == eval_json(tiny_gt, folder)


def test_it_refuses_synth_predict_on_a_missing_ground_truth(tmp_path):
    assert_one_error_line(egomask("synth-predict", tmp_path / "no-gt", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# --- version -------------------------------------------------------------------------------------


def test_it_prints_the_installed_version_and_the_scorer_version():
    from importlib import metadata

    from scoring import SCORER_VERSION

    for script in (False, True):
        done = egomask("--version", script=script)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"egomask {metadata.version('egomask')} (scorer {SCORER_VERSION})\n"


def test_it_reads_the_version_from_pyproject_in_a_source_checkout(monkeypatch):
    import tomllib
    from importlib import metadata

    from scoring import cli

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    pyproject = tomllib.loads((Path(cli.__file__).parents[2] / "pyproject.toml").read_text())
    assert cli.version() == f"{pyproject['project']['version']} (source checkout)"
