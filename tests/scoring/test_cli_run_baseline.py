"""`egomask run-baseline`, end to end as a real subprocess: the list, a run, resume, merge, and the
one-line errors (exit 2) for what the user must fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from scoring.cli import main
from scoring.runners import RUNNERS

from .test_cli import assert_one_error_line, egomask


def test_it_lists_the_runners_as_json():
    done = egomask("run-baseline", "--list", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert [row["name"] for row in listing] == list(RUNNERS)
    for row in listing:
        assert isinstance(row["description"], str) and row["description"]
        assert isinstance(row["needs_weights"], bool)
        assert set(row["devices"]) <= {"cpu", "cuda"}
    assert {row["name"]: row["needs_weights"] for row in listing}["colour"] is False
    table = egomask("run-baseline", "--list")
    assert table.returncode == 0 and all(name in table.stdout for name in RUNNERS)


def test_it_runs_a_baseline_that_validate_accepts(public_inputs, tiny_frames, tmp_path):
    meta = public_inputs / "meta_expressions.json"
    done = egomask("run-baseline", "colour", "--inputs", meta, "--frames", public_inputs, "--out", tmp_path / "c.zip")
    assert done.returncode == 0, done.stderr
    assert "colour 1.0.0 on cpu: 11 expression(s)" in done.stdout and "frames/s" in done.stdout
    checked = egomask("validate", "--gt", tiny_frames, "--pred", tmp_path / "c.zip", "--json")
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["ok"] is True

    # Shards of one run, each its own zip, merged: the same bytes.
    for i in range(3):
        shard = egomask("run-baseline", "colour", "--inputs", meta, "--frames", public_inputs / "JPEGImages",
                        "--out", tmp_path / f"s{i}.zip", "--shard", f"{i}/3", "--json")
        assert shard.returncode == 0, shard.stderr
        assert json.loads(shard.stdout)["shard"] == f"{i}/3"
    merged = egomask("run-baseline", "--merge", tmp_path / "m.zip", *(tmp_path / f"s{i}.zip" for i in range(3)))
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "m.zip").read_bytes() == (tmp_path / "c.zip").read_bytes()

    only_long = egomask("run-baseline", "empty", "--inputs", meta, "--frames", public_inputs, "--split", "long",
                        "--out", tmp_path / "long.zip")
    assert only_long.returncode == 0, only_long.stderr
    assert {name.split("/")[0] for name in zipfile.ZipFile(tmp_path / "long.zip").namelist()} == {"long"}


@pytest.mark.parametrize("case, expected", [
    ("no weights", "grounded-sam2 needs its weights: pass --weights DIR"),
    ("missing weights", "the weights folder"),
    ("no frames", "lacks"),
    ("cuda", "CUDA was asked for"),
    ("unknown runner", "no runner named 'sam3'"),
    ("bad option", "--option takes KEY=VALUE"),
    ("no inputs", "needs --inputs"),
])
def test_it_says_in_one_line_what_to_fix(case, expected, public_inputs, tmp_path):
    meta = public_inputs / "meta_expressions.json"
    base = ["--inputs", meta, "--frames", public_inputs, "--out", tmp_path / "o.zip"]
    args = {
        "no weights": ["grounded-sam2", *base, "--device", "cpu"],
        "missing weights": ["grounded-sam2", *base, "--device", "cpu", "--weights", tmp_path / "nowhere"],
        "no frames": ["colour", "--inputs", meta, "--frames", tmp_path, "--out", tmp_path / "o.zip"],
        "cuda": ["grounded-sam2", *base, "--device", "cuda", "--weights", tmp_path],
        "unknown runner": ["sam3", *base],
        "bad option": ["colour", *base, "--option", "min_area"],
        "no inputs": ["colour", "--frames", public_inputs, "--out", tmp_path / "o.zip"],
    }[case]
    command = [sys.executable, "-m", "scoring.cli", "run-baseline", *map(str, args)]
    # No GPU for this process, even on a machine that has one.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    line = assert_one_error_line(done)
    assert expected in line, line
    assert not (tmp_path / "o.zip").exists()


def test_an_interrupted_run_says_how_to_resume(public_inputs, tmp_path, monkeypatch, capsys):
    import scoring.runners

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring.runners, "run", interrupted)
    code = main(["run-baseline", "colour", "--inputs", str(public_inputs / "meta_expressions.json"),
                 "--frames", str(public_inputs), "--out", str(tmp_path / "o.zip"), "--quiet"])
    assert code == 130
    assert "run the same command again to resume" in capsys.readouterr().err
