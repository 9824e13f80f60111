"""Package layering: search_spaces depends on nothing of at2_tune; trainers (the replay trainable
every Ray worker imports) does not load the AT2 core or GPyTorch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # each test imports in a fresh interpreter

ROOT = Path(__file__).resolve().parents[1]


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_search_spaces_import_nothing_of_at2_tune():
    loaded = _modules_loaded_by("import search_spaces; search_spaces.HYPERREC_SPACE.validate")
    assert "search_spaces" in loaded
    assert not {m for m in loaded if m == "at2_tune" or m.startswith("at2_tune.")}


@pytest.mark.parametrize("module", ["trainers.curve_trainable", "trainers"])
def test_trainers_do_not_load_the_engine_or_gpytorch(module):
    loaded = _modules_loaded_by(f"import {module}")
    assert module in loaded
    assert not {m for m in loaded if m.startswith(("at2_tune.core", "at2_tune.model", "gpytorch"))}
