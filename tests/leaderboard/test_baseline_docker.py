"""The docker files for the GPU worker (no docker engine runs here: their content is checked)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_it_runs_a_gpu_worker_on_both_queues_with_the_weights_volume():
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    env = compose["x-env"]
    gpu = compose["services"]["gpu-worker"]
    assert gpu["build"]["target"] == "gpu"
    command = gpu["command"]
    assert command[command.index("-Q") + 1].split(",") == ["gpu", "scoring"]
    assert command[command.index("--concurrency") + 1] == "1"
    mounts = dict(reversed(volume.split(":", 1)) for volume in gpu["volumes"])
    assert mounts[env["BASELINE_WEIGHTS_DIR"]] == "baseline-weights"
    assert mounts[env["BASELINE_FRAMES_DIR"]] == "baseline-frames"
    assert mounts[env["BASELINE_WORK_DIR"]] == "baseline-runs"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # The CPU worker runs CPU baselines and assembles runs: it sees the frames and the shard folders too.
    cpu = dict(reversed(v.split(":", 1)) for v in compose["services"]["worker"]["volumes"])
    assert cpu[env["BASELINE_FRAMES_DIR"]] == "baseline-frames" and cpu[env["BASELINE_WORK_DIR"]] == "baseline-runs"
    assert {"baseline-frames", "baseline-weights", "baseline-runs"} <= set(compose["volumes"])


def test_it_installs_a_cuda_torch_before_the_runners_extra():
    text = (DOCKER / "Dockerfile").read_text()
    gpu = text[text.index("FROM app AS gpu"):]
    torch = re.search(r'RUN pip install [^\n]*"torch==\$\{TORCH_VERSION\}"', gpu)
    assert torch is not None and torch.start() < gpu.index("['runners']")
    assert "HF_HUB_OFFLINE=1" in gpu  # weights come from the volume, never from the hub
