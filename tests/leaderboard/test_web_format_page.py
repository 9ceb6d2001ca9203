"""What to submit: the format page, each phase's example zip (from public inputs only), and the
ground truth as the organizers download it."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

from leaderboard.challenges.models import GroundTruthBundle
from leaderboard.challenges.services import _load_cached, ground_truth_check, ground_truth_create, phase_create
from leaderboard.storage import private_storage
from scoring import evaluate, load_ground_truth

from .conftest import zip_tree


def test_it_shows_the_submission_format_and_the_metrics_on_the_challenge_format_page(client, phase):
    r = client.get("/challenges/egomask/format/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<section id="submission-format"' in html and '<section id="metrics"' in html
    assert "<code>&lt;exp_id&gt;-&lt;obj_id&gt;_grounding_ret.json</code>" in html  # the side files table
    assert "IoU_gold_pred = (0 + 0.5 + 0) / 3 = 0.1667" in html  # the worked example
    assert 'href="#metrics"' in html  # links between the two pages stay on the page
    assert f'href="/challenges/egomask/phases/{phase.slug}/example.zip"' in html
    assert "/challenges/egomask/format/" in client.get("/challenges/egomask/").content.decode()


def test_it_serves_an_example_that_scores_and_holds_no_mask_of_the_ground_truth(client, phase, synthetic, tmp_path):
    r = client.get(f"/challenges/egomask/phases/{phase.slug}/example.zip")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert r["Content-Disposition"] == f'attachment; filename="egomask-{phase.slug}-example.zip"'
    example = tmp_path / "example.zip"
    example.write_bytes(r.content)
    gt = load_ground_truth(synthetic["gt_dir"])
    result = evaluate(gt, example)
    assert result.missing == () and result.warnings == ()
    truth = {c for e in gt.expressions() for c in gt.masks(e).values()}
    shown = {m["counts"] for n in zipfile.ZipFile(example).namelist()
             for m in json.loads(zipfile.ZipFile(example).read(n)).values()}
    assert not truth & shown


def test_it_makes_the_example_without_reading_the_ground_truth(client, phase, settings):
    # The hidden file and every copy of it are gone: a page that read the ground truth would fail.
    private_storage().delete(phase.ground_truth.file.name)
    shutil.rmtree(settings.GROUND_TRUTH_CACHE_DIR, ignore_errors=True)
    _load_cached.cache_clear()
    assert client.get(f"/challenges/egomask/phases/{phase.slug}/example.zip").status_code == 200


def test_it_offers_only_the_phases_splits_and_nothing_before_the_ground_truth_is_checked(client, phase, challenge):
    long_only = phase_create(challenge=challenge, slug="long-only", name="Long only", order=2,
                             ground_truth=phase.ground_truth)
    long_only.splits.exclude(code__in=["long", "overall"]).delete()
    data = client.get("/challenges/egomask/phases/long-only/example.zip").content
    assert {name.split("/")[2] for name in zipfile.ZipFile(io.BytesIO(data)).namelist()} == {"long"}
    phase_create(challenge=challenge, slug="no-gt", name="No ground truth", order=3)
    assert client.get("/challenges/egomask/phases/no-gt/example.zip").status_code == 404
    assert client.get("/challenges/egomask/phases/nosuch/example.zip").status_code == 404


def test_it_checks_the_published_download_zipped_as_it_is_and_notes_the_training_set(challenge, synthetic,
                                                                                         tmp_path, settings):
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "cache"
    dataset = tmp_path / "dl" / "dataset"
    shutil.copytree(synthetic["gt_dir"], dataset / "egomask")
    (dataset / "egomask-train" / "train").mkdir(parents=True)
    (dataset / "egomask-train" / "train" / "mask_dict.json").write_text("{}")
    bundle = ground_truth_create(challenge=challenge, name="as downloaded",
                                 file=io.BytesIO(zip_tree(tmp_path / "dl")), filename="dataset.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)
    assert bundle.status == GroundTruthBundle.Status.READY
    assert bundle.version == load_ground_truth(synthetic["gt_dir"]).version
    assert bundle.message == "ignored dataset/egomask-train/: the training set (EgoMask-Train) is not scored"
    cached = {p.name for p in (tmp_path / "cache").iterdir()}
    assert cached == {f"{bundle.sha256}.zip", f"egomask-gt-1-{bundle.version}.npz"}
