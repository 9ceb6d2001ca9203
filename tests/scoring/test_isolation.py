"""scoring/ is a library: it imports and scores with Django, Celery and DRF absent."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import scoring

PACKAGE = Path(scoring.__file__).parent


def test_it_imports_and_scores_without_django_celery_or_drf(tiny_gt, tiny_predictions):
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"django", "celery", "rest_framework", "kombu"}}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import scoring
        for module in pkgutil.walk_packages(scoring.__path__, "scoring."):
            importlib.import_module(module.name)
        result = scoring.evaluate(scoring.load_ground_truth({str(tiny_gt)!r}), {str(tiny_predictions())!r})
        assert "overall" in result.as_dict()
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in {{"django", "celery", "rest_framework"}})
        assert not leaked, leaked
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_it_has_no_framework_import_in_its_source():
    offenders = [
        str(path) for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import django", "from django", "import celery", "from celery",
                                    "import rest_framework", "from rest_framework"))
    ]
    assert offenders == []


# The participant's command line and its HTTP client live in scoring/cli/; the core never needs them.
CLIENT_LIBRARIES = {"requests", "urllib3", "rich"}


def core_modules() -> list[str]:
    """Every module of scoring/ outside its subpackages (cli/, and runners/ once it exists)."""
    return sorted(f"scoring.{m.name}" for m in pkgutil.iter_modules(scoring.__path__) if not m.ispkg)


def test_it_knows_the_core_modules():
    assert {"scoring.archive", "scoring.rle", "scoring.groundtruth", "scoring.predictions", "scoring.metrics",
            "scoring.evaluation", "scoring.synth", "scoring.errors"} <= set(core_modules())
    assert "scoring.cli" not in core_modules()


def test_it_scores_and_runs_the_local_commands_without_the_http_client_or_rich(tiny_gt, tiny_predictions):
    code = textwrap.dedent(f"""
        import contextlib, importlib, io, sys
        blocked = {sorted(CLIENT_LIBRARIES)!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import scoring
        for name in {core_modules()!r}:
            importlib.import_module(name)
        gt, pred = {str(tiny_gt)!r}, {str(tiny_predictions())!r}
        assert "overall" in scoring.evaluate(scoring.load_ground_truth(gt), pred).as_dict()
        assert scoring.validate_submission(pred).ok
        from scoring.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["eval", "--gt", gt, "--pred", pred, "--json"]) == 0
            assert main(["validate", "--pred", pred]) == 0
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not leaked, leaked
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_it_has_no_client_import_in_the_core_source():
    offenders = [
        f"{name}: {line.strip()}" for name in core_modules()
        for line in (PACKAGE / f"{name.split('.')[1]}.py").read_text().splitlines()
        if line.strip().startswith(tuple(f"{verb} {lib}" for verb in ("import", "from") for lib in CLIENT_LIBRARIES))
        or line.strip().startswith(("from .cli", "from scoring.cli", "import scoring.cli"))
    ]
    assert offenders == []


# The runners import their model libraries when a run loads them, never when they are imported:
# the registry, `run-baseline --list` and the classical baselines work without them.
MODEL_LIBRARIES = {"torch", "transformers", "scipy"}


def test_the_runners_import_and_list_without_the_model_libraries():
    code = textwrap.dedent(f"""
        import contextlib, importlib, io, pkgutil, sys
        blocked = {sorted(MODEL_LIBRARIES)!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import scoring.runners
        for module in pkgutil.walk_packages(scoring.runners.__path__, "scoring.runners."):
            importlib.import_module(module.name)
        from scoring.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run-baseline", "--list", "--json"]) == 0
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not leaked, leaked
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
