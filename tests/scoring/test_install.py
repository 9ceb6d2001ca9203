"""The base distribution, installed as a participant installs it: the scorer and `egomask`, nothing of the server.

`pip install <the repository>` (not editable, so the built wheel is what is tested) into a fresh
virtualenv; then the participant's commands run there, outside the checkout, and the server's
libraries are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scoring import SCORER_VERSION

ROOT = Path(__file__).resolve().parents[2]
SERVER_LIBRARIES = ("django", "rest_framework", "celery", "kombu", "psycopg", "storages", "boto3", "gunicorn",
                    "whitenoise", "drf_spectacular")
# Build leftovers and local state of a checkout: none of it may leak into (or slow down) the wheel built here.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                    ".pytest_cache", ".hypothesis", "data")


def clean_env() -> dict[str, str]:
    """The environment of a participant's shell: no virtualenv of ours, no PYTHONPATH to the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def participant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtualenv with the base distribution (no extras) installed."""
    base = tmp_path_factory.mktemp("install")
    source = base / "egomask"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
                          capture_output=True, text=True, env=clean_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def run(bin_dir: Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / str(args[0])), *map(str, args[1:])], capture_output=True, text=True,
                          cwd=cwd, env=clean_env(), timeout=120)


def test_it_installs_the_participant_tools_without_the_server(participant, tmp_path):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = run(participant, "egomask", "--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"egomask {version} (scorer {SCORER_VERSION})\n"

    done = run(participant, "egomask", "synth", tmp_path / "gt", "--scale", "tiny", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'gt'}")
    done = run(participant, "egomask", "synth-predict", tmp_path / "gt", tmp_path / "pred.zip", "--quality",
               "perfect", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    done = run(participant, "egomask", "eval", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred.zip", "--json",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["overall"] == {"T_recall": 100.0, "IoU_all": 100.0, "IoU_gold": 100.0,
                                                  "IoU_gold_pred": 100.0}

    done = run(participant, "egomask", "validate", "--pred", tmp_path / "pred.zip", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: ")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    done = run(participant, "egomask", "validate", "--pred", tmp_path / "broken.zip", cwd=tmp_path)
    assert done.returncode == 1 and "INVALID" in done.stdout

    done = run(participant, "egomask", "submit", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--phase" in done.stdout and "--method-name" in done.stdout


def test_it_leaves_out_the_server_libraries_and_the_test_oracle(participant, tmp_path):
    probe = ("import importlib.util, json, scoring; "
             f"print(json.dumps({{'scoring': scoring.__file__, "
             f"'absent': [m for m in {SERVER_LIBRARIES + ('scoring.dense', 'tests')!r} "
             "if importlib.util.find_spec(m) is None], "
             "'present': [m for m in ('requests', 'rich', 'numpy', 'pycocotools', 'PIL') "
             "if importlib.util.find_spec(m) is not None]}))")
    done = run(participant, "python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["scoring"]).is_relative_to(participant.parent)  # the installed copy, not the checkout
    assert found["absent"] == [*SERVER_LIBRARIES, "scoring.dense", "tests"]
    assert found["present"] == ["requests", "rich", "numpy", "pycocotools", "PIL"]


def test_the_base_install_lists_the_runners_and_says_what_a_model_runner_needs(participant, tmp_path):
    done = run(participant, "egomask", "synth", tmp_path / "gt", "--scale", "tiny", "--frames", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run(participant, "egomask", "run-baseline", "--list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "colour" in {row["name"] for row in json.loads(done.stdout)}
    common = ["--inputs", tmp_path / "gt" / "meta_expressions.json", "--frames", tmp_path / "gt"]
    done = run(participant, "egomask", "run-baseline", "empty", *common, "--out", tmp_path / "e.zip", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the empty baseline needs nothing more
    done = run(participant, "egomask", "run-baseline", "colour", *common, "--out", tmp_path / "c.zip", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["egomask: error: this runner needs scipy, which is not installed: install "
                                        "torch for your machine first, then pip install 'egomask[runners]' "
                                        "(docs/runners.md)"]
