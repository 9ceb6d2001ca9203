"""scoring/ is a library: it imports and scores with Django, Celery and DRF absent."""

from __future__ import annotations

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
