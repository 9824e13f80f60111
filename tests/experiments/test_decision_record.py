"""The default policy's decisions on a sample of replay cases equal those recorded before the
decision core was rebuilt out of a transfer posterior, policies and a lean engine (issue 26).

``data/decisions_sample.json`` holds 8 cases of ``experiments.decision_record`` (LOO and the
paper's pairs of both databases, 1 and 4 slots), recorded with the code of commit 3f4e66a (the
closing note of issue 26 compares all 208 cases) and recorded again when the budget planner
became the default (issue 36: its plans may spend fewer epochs than the budget); the LCBench
cases again when LCBench's curves became its 50 trained epochs (2026-12-07).
"""

import json
from pathlib import Path

import pytest

from experiments.decision_record import first_difference, main, replay_recorded

SAMPLE = Path(__file__).parent / "data" / "decisions_sample.json"
ROWS = json.loads(SAMPLE.read_text())


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['database']}-{r['protocol']}-"
                                                    f"{r['case']}-sp{r['seed_profile']}-"
                                                    f"K{r['concurrency']}")
def test_the_default_decisions_are_those_recorded(row, release_dir):
    decisions = replay_recorded(row, str(release_dir))
    assert first_difference(row["decisions"], decisions) is None
    assert len(decisions) == len(row["decisions"]) <= row["budget"] == 100


def test_first_difference_names_the_first_observation_that_differs():
    a = [[1, 1, 1], [2, 1, 1], [3, 1, 2]]
    assert first_difference(a, [list(x) for x in a]) is None
    assert first_difference(a, [[1, 1, 1], [2, 1, 2], [3, 1, 2]]) == 1
    assert first_difference(a, a[:2]) == 2


def test_compare_reports_a_changed_decision(release_dir, tmp_path, capsys):
    row = dict(ROWS[6], decisions=[list(d) for d in ROWS[6]["decisions"]])
    row["decisions"][40][0] += 1
    path = tmp_path / "changed.json"
    path.write_text(json.dumps([row]))
    assert main(["--compare", str(path), "--data-dir", str(release_dir)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS lcbench pairs jasmine sp0 K=1 at observation 40" in out
    assert "0 of 1 cases make the same decisions" in out
