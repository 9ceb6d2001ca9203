"""Fixtures for the baseline tests: a tiny synthetic phase whose frames are where the runners read
them (BASELINE_FRAMES_DIR), and the work folder of the runs in the test's own temporary folder."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
from scoring.synth import synthesize

from .conftest import zip_tree


@pytest.fixture(scope="session")
def framed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The tiny benchmark with its JPEG frames: the ground truth zip (annotations only) and the frames."""
    base = tmp_path_factory.mktemp("framed")
    gt = synthesize(base / "gt", scale="tiny", seed=21, frames=True)
    frames = base / "frames"
    frames.mkdir()
    shutil.move(gt / "JPEGImages", frames / "JPEGImages")
    return {"gt_zip": zip_tree(gt), "frames": frames}


@pytest.fixture
def frames_dir(framed, tmp_path) -> Path:
    """A copy of the frames of its own, so a test may remove some."""
    target = tmp_path / "frames"
    shutil.copytree(framed["frames"], target)
    return target


@pytest.fixture
def baseline_settings(settings, frames_dir, tmp_path):
    settings.BASELINE_FRAMES_DIR = frames_dir
    settings.BASELINE_WORK_DIR = tmp_path / "baseline-runs"
    settings.BASELINE_WEIGHTS_DIR = tmp_path / "weights"
    settings.BASELINE_PROGRESS_EVERY = 0  # every expression's progress is written: the tests read it
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    return settings


@pytest.fixture
def framed_phase(challenge, framed, baseline_settings):
    bundle = ground_truth_create(challenge=challenge, name="tiny with frames", file=io.BytesIO(framed["gt_zip"]),
                                 filename="gt.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)
    return phase_create(challenge=challenge, slug="framed", name="Framed phase", ground_truth=bundle)


__all__ = ["baseline_settings", "framed", "framed_phase", "frames_dir"]  # fixtures, for `import *`
