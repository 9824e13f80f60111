"""Package layering.

Every import of the package, read from the source (module level and inside functions alike),
is an arrow between two rooms: a folder of the package (``at2_tune/core``, ``at2_tune/tune``, ...),
one of its top-level modules, or the sibling packages ``search_spaces`` and ``trainers``. The
rooms stand on the floors of :data:`FLOORS`, and an arrow only goes down: no circle, no arrow
back up. The decision core imports no Ray; the Ray adapters import nothing of the bench.
Beyond the source, search_spaces loads nothing of at2_tune, and trainers (the replay trainable
every Ray worker imports) does not load the AT2 core or GPyTorch (checked in a fresh
interpreter).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("at2_tune", "search_spaces", "trainers")

FLOORS = (
    ("at2_tune.cli",),
    ("at2_tune.commands",),
    ("at2_tune.live",),
    ("at2_tune.bench",),
    ("at2_tune",),  # the public names (AT2Searcher, AT2Settings, ...), imported lazily
    ("at2_tune.tune",),
    ("at2_tune.simulator",),
    ("trainers",),
    ("at2_tune.core",),
    ("at2_tune.model", "at2_tune.databases", "at2_tune.recommendation"),
    ("at2_tune.errors", "at2_tune.evaluation", "at2_tune.paths", "at2_tune.notices"),
    ("search_spaces",),
)
"""The rooms from the top floor down; a room imports only rooms on lower floors."""
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room_of(module: str) -> str | None:
    """The room of a dotted module name (``None``: not of this project)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] != "at2_tune" or len(parts) == 1:
        return parts[0]
    return f"at2_tune.{parts[1]}"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every absolute module ``path`` imports, with its line: ``from a import b`` names
    ``a.b`` where ``b`` is a module, else ``a``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                found.append((dotted if _is_module(dotted) else node.module, node.lineno))
    return found


def arrows() -> list[tuple[str, str, str]]:
    """``(from room, to room, where)`` for every import between two rooms."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = room_of(_module_name(path))
            for target, line in imports_of(path):
                room = room_of(target)
                if room is not None and room != source:
                    found.append((source, room, f"{path.relative_to(ROOT)}:{line} imports {target}"))
    return found


def test_every_room_is_on_a_floor():
    rooms = {room_of(_module_name(p)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert rooms - set(FLOOR) == set(), "add the new room to FLOORS in tests/test_layering.py"


def test_every_arrow_goes_down():
    up = [f"{where} ({source} on floor {FLOOR[source]} -> {target} on floor {FLOOR[target]})"
          for source, target, where in arrows() if FLOOR[target] <= FLOOR[source]]
    assert up == []


def test_the_arrows_are_read_from_the_source():
    """The reading finds what is there: a known arrow of each kind (module level, inside a
    function, ``from package import module``)."""
    found = {(source, target) for source, target, _ in arrows()}
    assert {("at2_tune.tune", "at2_tune.core"), ("at2_tune.bench", "at2_tune.tune"),
            ("at2_tune.bench", "at2_tune.evaluation"), ("trainers", "at2_tune.databases")} <= found
    assert ("at2_tune.core", "at2_tune.tune") not in found


@pytest.mark.parametrize("room", ["at2_tune/core", "at2_tune/model", "at2_tune/databases"])
def test_the_decision_core_and_its_data_import_no_ray(room):
    ray = [f"{path.relative_to(ROOT)}:{line} imports {target}"
           for path in sorted((ROOT / room).rglob("*.py"))
           for target, line in imports_of(path) if target.split(".")[0] == "ray"]
    assert ray == []


def test_the_ray_adapters_import_nothing_of_the_bench():
    assert [where for source, target, where in arrows()
            if source == "at2_tune.tune" and target == "at2_tune.bench"] == []


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.integration  # imports in a fresh interpreter
def test_search_spaces_import_nothing_of_at2_tune():
    loaded = _modules_loaded_by("import search_spaces; search_spaces.HYPERREC_SPACE.validate")
    assert "search_spaces" in loaded
    assert not {m for m in loaded if m == "at2_tune" or m.startswith("at2_tune.")}


@pytest.mark.integration
@pytest.mark.parametrize("module", ["trainers.curve_trainable", "trainers"])
def test_trainers_do_not_load_the_engine_or_gpytorch(module):
    loaded = _modules_loaded_by(f"import {module}")
    assert module in loaded
    assert not {m for m in loaded if m.startswith(("at2_tune.core", "at2_tune.model", "gpytorch"))}
