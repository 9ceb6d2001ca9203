"""The shared runner library (scoring/runners/base.py) and the weight-free baselines, on the tiny
synthetic benchmark with frames: jobs, frames checks, shards, the atomic writer, resume, merge."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring import evaluate, load_ground_truth, validate_submission
from scoring.runners import RUNNERS, Job, RunnerError, get_runner, load_jobs, merge, run, shard
from scoring.runners.base import check_frames, parse_shard
from scoring.runners.output import Writer
from scoring.runners.classical import colour_words

from .conftest import box, rle_of


def _jobs(inputs: Path) -> list[Job]:
    return load_jobs(inputs / "meta_expressions.json")


def test_it_reads_every_expression_with_its_split_and_frames_folder(public_inputs, tiny_frames):
    jobs = _jobs(public_inputs)
    gt = load_ground_truth(tiny_frames)
    assert {(j.split, j.video, j.exp_id, j.obj_id) for j in jobs} == {
        (v.split, v.name, e.exp_id, e.obj_id) for v in gt.videos.values() for e in v.expressions}
    for job in jobs:
        assert job.clip == (job.video.split("--")[0] if job.split == "medium" else job.video)
        assert job.frames == gt.videos[job.video].frames
        assert job.relative_path == f"{job.split}/{job.video}/{job.exp_id}/{job.exp_id}-{job.obj_id}.json"
    assert {j.split for j in load_jobs(public_inputs / "meta_expressions.json", split="long")} == {"long"}


def test_it_takes_the_split_of_a_split_file_from_its_folder(tiny_frames):
    jobs = load_jobs(tiny_frames / "subset" / "medium" / "meta_expressions.json")
    assert jobs and {j.split for j in jobs} == {"medium"}
    assert all("--" in j.video and j.clip == j.video.split("--")[0] for j in jobs)


def test_it_refuses_a_meta_file_that_says_no_split(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"videos": {"v": {"frames": ["0"], "expressions": {"0": {"exp": "a", "obj_id": 1}}}}}))
    with pytest.raises(RunnerError, match="does not say which split.*pass --split"):
        load_jobs(meta)
    assert load_jobs(meta, split="short")[0].obj_id == "1"
    for body in ("not json", json.dumps({"videos": []}), json.dumps({"videos": {"v": {"frames": []}}})):
        meta.write_text(body)
        with pytest.raises(RunnerError, match=str(meta)):
            load_jobs(meta, split="short")
    with pytest.raises(RunnerError, match="does not exist"):
        load_jobs(tmp_path / "nothing.json")


def test_it_names_the_frames_that_are_missing(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    assert check_frames(jobs, public_inputs) == public_inputs / "JPEGImages"
    assert check_frames(jobs, public_inputs / "JPEGImages") == public_inputs / "JPEGImages"
    partial = tmp_path / "JPEGImages"
    job = jobs[0]
    (partial / job.clip).mkdir(parents=True)
    (partial / job.clip / f"{job.frames[0]}.jpg").write_bytes(b"")
    needed = len({(j.clip, f) for j in jobs for f in j.frames})
    with pytest.raises(RunnerError, match=f"lacks {needed - 1:,} of the {needed:,} frames"):
        check_frames(jobs, tmp_path)
    with pytest.raises(RunnerError, match="does not exist"):
        check_frames(jobs, tmp_path / "elsewhere")


def test_it_deals_whole_videos_to_balanced_deterministic_shards(public_inputs):
    jobs = _jobs(public_inputs)
    for count in (1, 2, 3, 7):
        parts = [shard(jobs, i, count) for i in range(count)]
        assert sorted(j.relative_path for part in parts for j in part) == sorted(j.relative_path for j in jobs)
        owners = {}
        for i, part in enumerate(parts):
            for job in part:
                assert owners.setdefault(job.video, i) == i  # a video is never split
        assert parts == [shard(list(jobs), i, count) for i in range(count)]
        loads = [sum(len(j.frames) for j in part) for part in parts]
        biggest = max(sum(len(j.frames) for j in jobs if j.video == v) for v in owners)
        assert max(loads) - min(loads) <= biggest
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "x", "1/0"):
        with pytest.raises(RunnerError, match="--shard"):
            parse_shard(bad)


def test_it_writes_only_non_empty_masks_atomically(tmp_path):
    job = Job("short", "v", "0", "3", "the mug", "v", ("00000", "00005", "00010", "00015"))
    writer = Writer(tmp_path)
    mask = box(4, 6, 1, 3, 2, 5)
    seen, written = writer.write(job, iter([("00010", mask), ("00000", np.zeros((4, 6), bool)),
                                            ("00005", rle_of(mask)), ("00015", rle_of(np.zeros((4, 6), bool)))]))
    assert (seen, written) == (4, 2)
    body = json.loads(writer.target(job).read_text())
    assert list(body) == ["00005", "00010"]  # in the video's frame order
    assert body["00010"] == rle_of(mask)
    assert [p.name for p in writer.target(job).parent.iterdir()] == ["0-3.json"]
    with pytest.raises(ValueError, match="frame '99999'"):
        writer.write(job, iter([("99999", mask)]))
    with pytest.raises(ValueError, match=r"shape \(4, 6, 3\)"):
        writer.write(job, iter([("00000", np.zeros((4, 6, 3), bool))]))
    assert json.loads(writer.target(job).read_text()) == body  # a failed write leaves the earlier file


def test_the_colour_baseline_scores_without_the_ground_truth(public_inputs, tiny_frames, tmp_path):
    report = run(get_runner("colour"), jobs=_jobs(public_inputs), frames=public_inputs, out=tmp_path / "c.zip")
    assert report.expressions == len(_jobs(public_inputs)) and report.skipped_expressions == 0
    assert report.masks > 0 and report.frames_per_second > 0
    assert not (tmp_path / "c.partial").exists()
    gt = load_ground_truth(tiny_frames)
    assert validate_submission(tmp_path / "c.zip", gt=gt).ok
    result = evaluate(gt, tmp_path / "c.zip")
    assert not result.missing
    # The synthetic objects are painted in the colour their expression names: a colour method finds them.
    assert result.summaries["overall"].as_dict()["IoU_gold"] > 30


def test_the_empty_baseline_is_the_lower_bound(public_inputs, tiny_frames, tmp_path):
    run(get_runner("empty"), jobs=_jobs(public_inputs), frames=public_inputs, out=tmp_path / "e")
    files = sorted((tmp_path / "e").rglob("[!.]*.json"))
    assert len(files) == len(_jobs(public_inputs)) and all(json.loads(f.read_text()) == {} for f in files)
    result = evaluate(load_ground_truth(tiny_frames), tmp_path / "e")
    assert not result.missing
    assert not [w for w in result.warnings if "egomask-run" in str(w)]  # the scorer ignores the run's manifest
    assert result.summaries["overall"].as_dict()["T_recall"] == 0
    assert result.summaries["overall"].as_dict()["IoU_gold_pred"] == 0


def test_it_resumes_an_interrupted_run(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    whole = run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "whole.zip")

    class Stop(Exception):
        pass

    def stop_after_three(state):
        if state.done_expressions == 3:
            raise Stop

    with pytest.raises(Stop):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "again.zip",
            progress=stop_after_three)
    assert not (tmp_path / "again.zip").exists()
    assert len(list((tmp_path / "again.partial").rglob("[!.]*.json"))) == 3
    resumed = run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "again.zip")
    assert resumed.skipped_expressions == 3 and resumed.expressions == whole.expressions
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "whole.zip").read_bytes()
    with pytest.raises(RunnerError, match="already exists"):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "again.zip")


def test_it_refuses_to_resume_another_runs_folder(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "out")
    with pytest.raises(RunnerError, match="earlier run with other settings"):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "out", options={"min_area": "0.01"})


def test_shards_merge_into_the_same_zip_as_one_run(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "whole.zip")
    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "s0.zip", shard_of=(0, 2))
    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "s1", shard_of=(1, 2))
    merge([tmp_path / "s1", tmp_path / "s0.zip"], tmp_path / "merged.zip")
    assert (tmp_path / "merged.zip").read_bytes() == (tmp_path / "whole.zip").read_bytes()
    # Two shards in one shared folder: each keeps its own manifest, and the folder zips to the same.
    for i in range(2):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "shared", shard_of=(i, 2))
    merge([tmp_path / "shared"], tmp_path / "shared.zip")
    assert (tmp_path / "shared.zip").read_bytes() == (tmp_path / "whole.zip").read_bytes()
    with pytest.raises(RunnerError, match="not shards of one run"):
        merge([tmp_path / "s0.zip", tmp_path / "whole.zip"], tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists()
    assert zipfile.ZipFile(tmp_path / "whole.zip").namelist() == sorted(
        j.relative_path for j in jobs)  # no manifest or partial file in the zip


def test_it_refuses_what_a_runner_cannot_do(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    with pytest.raises(RunnerError, match="no option 'speed'.*min_area"):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "o", options={"speed": "1"})
    with pytest.raises(RunnerError, match="runs on cpu, not 'cuda'"):
        run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=tmp_path / "o", device="cuda")
    with pytest.raises(RunnerError, match="needs its weights: pass --weights"):
        run(get_runner("grounded-sam2"), jobs=jobs, frames=public_inputs, out=tmp_path / "o")
    with pytest.raises(RunnerError, match="weights folder .* does not exist"):
        run(get_runner("grounded-sam2"), jobs=jobs, frames=public_inputs, out=tmp_path / "o", weights=tmp_path / "w")
    with pytest.raises(RunnerError, match="min_area is a fraction"):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "o2", options={"min_area": "2"})
    with pytest.raises(RunnerError, match="no runner named 'sam3'"):
        get_runner("sam3")


def test_it_reads_the_colour_words_of_an_expression():
    assert colour_words("The grey or silver pan next to the RED mug.") == ["grey", "red"]
    assert colour_words("a gray towel") == ["grey"]
    assert colour_words("the knife on the left") == []


def test_every_runner_is_listed_with_what_the_list_promises():
    for name, runner in RUNNERS.items():
        listing = runner.listing()
        assert listing["name"] == name
        assert {"name", "description", "needs_weights", "devices"} <= set(listing)
        assert set(listing["devices"]) <= {"cuda", "cpu"} and listing["devices"]


def _meta_with(tmp_path: Path, inputs: Path, change) -> Path:  # type: ignore[no-untyped-def]
    meta = json.loads((inputs / "meta_expressions.json").read_text())
    change(meta["videos"])
    path = tmp_path / "meta_expressions.json"
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("where, bad", [("exp_id", "../../../../escaped"), ("exp_id", "a/b"), ("obj_id", "..\\x"),
                                        ("video", ".."), ("exp_id", ""), ("obj_id", [1, 2]), ("obj_id", True)])
def test_it_refuses_ids_that_are_not_one_file_name(public_inputs, tmp_path, where, bad):
    def change(videos):
        name = next(iter(videos))
        if where == "video":
            videos[bad] = videos.pop(name)
        elif where == "exp_id":
            expressions = videos[name]["expressions"]
            expressions[bad] = expressions.pop(next(iter(expressions)))
        else:
            next(iter(videos[name]["expressions"].values()))["obj_id"] = bad

    meta = _meta_with(tmp_path, public_inputs, change)
    with pytest.raises(RunnerError, match=str(meta)):
        load_jobs(meta)
    assert not list(tmp_path.parent.glob("escaped*")) and not list(Path("/").glob("escaped*"))


def test_it_keeps_ids_that_start_with_a_dot_in_the_zip(public_inputs, tmp_path):
    def change(videos):
        expressions = next(iter(videos.values()))["expressions"]
        expressions[".h"] = expressions.pop(next(iter(expressions)))

    jobs = load_jobs(_meta_with(tmp_path, public_inputs, change))
    run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=tmp_path / "e.zip")
    assert sorted(zipfile.ZipFile(tmp_path / "e.zip").namelist()) == sorted(j.relative_path for j in jobs)
    assert any("/.h/" in j.relative_path for j in jobs)


def test_it_refuses_a_video_without_frames_or_with_frames_of_two_sizes(public_inputs, tmp_path):
    meta = _meta_with(tmp_path, public_inputs, lambda videos: next(iter(videos.values())).update(frames=[]))
    with pytest.raises(RunnerError, match="lists no frames"):
        load_jobs(meta)
    frames = tmp_path / "frames"
    shutil.copytree(public_inputs / "JPEGImages", frames)
    job = _jobs(public_inputs)[0]
    odd = frames / job.clip / f"{job.frames[1]}.jpg"
    Image.open(odd).resize((10, 8)).save(odd)
    with pytest.raises(RunnerError, match=rf"{odd} is 8x10 .* other frames are \d+x\d+"):
        run(get_runner("colour"), jobs=[job], frames=frames, out=tmp_path / "c")


def test_a_refused_start_leaves_nothing_to_resume(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    with pytest.raises(RunnerError, match="min_area"):
        run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "c.zip", options={"min_area": "x"})
    report = run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "c.zip")
    assert report.skipped_expressions == 0 and (tmp_path / "c.zip").is_file()
    assert not (tmp_path / "c.partial").exists()


def test_a_second_run_into_the_same_place_is_refused_while_the_first_runs(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    refused = []

    def second_run(state):
        if state.done_expressions == 2:
            for out, shard_of in ((tmp_path / "c.zip", (0, 1)), (tmp_path / "c.zip", (1, 2))):
                with pytest.raises(RunnerError, match="another run is writing to"):
                    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=out, shard_of=shard_of)
                refused.append(shard_of)

    run(get_runner("colour"), jobs=jobs, frames=public_inputs, out=tmp_path / "c.zip", progress=second_run)
    assert refused == [(0, 1), (1, 2)]
    assert len(zipfile.ZipFile(tmp_path / "c.zip").namelist()) == len(jobs)  # the first run's work is whole
    # Shards of one run may share a folder (each holds its own lock).
    run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=tmp_path / "shared", shard_of=(0, 2),
        progress=lambda state: run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=tmp_path / "shared",
                                   shard_of=(1, 2)) if state.done_expressions == 1 else None)
    assert len(list((tmp_path / "shared").rglob("[!.]*.json"))) == len(jobs)


def test_it_says_when_out_cannot_be_written(public_inputs, tmp_path):
    jobs = _jobs(public_inputs)
    (tmp_path / "a-file").write_text("")
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        with pytest.raises(RunnerError, match="--out"):
            run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=out)
    run(get_runner("empty"), jobs=jobs, frames=public_inputs, out=tmp_path / "UPPER.ZIP")
    assert zipfile.is_zipfile(tmp_path / "UPPER.ZIP")
