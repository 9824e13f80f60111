"""A resumed trial's result.json, which Tune's logger replaced with the storage's older copy,
gets its rows back from AT2's own record before Tune logs the next result (no Ray run)."""

from __future__ import annotations

import json

from at2_tune.databases.tune_import import AT2_RESULTS_FILE
from at2_tune.tune.scheduler import _repair_result_json


def _rows(epochs) -> list[str]:
    return [json.dumps({"training_iteration": e, "acc": e / 10}) for e in epochs]


def test_a_result_json_that_lost_rows_is_rewritten_in_place_from_at2s_record(tmp_path) -> None:
    (tmp_path / AT2_RESULTS_FILE).write_text("\n".join(_rows([1, 2, 3])) + "\n")
    (tmp_path / "result.json").write_text("\n".join(_rows([1, 2])) + "\n")  # epoch 3 lost
    logger = open(tmp_path / "result.json", "a")  # Tune's logger holds it open for appending
    _repair_result_json(tmp_path)
    logger.write(_rows([4])[0] + "\n")  # the next result, logged after the repair
    logger.close()
    epochs = [json.loads(line)["training_iteration"]
              for line in (tmp_path / "result.json").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]


def test_a_complete_or_missing_result_json_is_left_alone(tmp_path) -> None:
    (tmp_path / AT2_RESULTS_FILE).write_text("\n".join(_rows([1, 2])) + "\n")
    _repair_result_json(tmp_path)
    assert not (tmp_path / "result.json").exists()  # Tune has not logged this trial yet
    complete = "\n".join(_rows([1, 2])) + "\n"
    (tmp_path / "result.json").write_text(complete)
    _repair_result_json(tmp_path)
    assert (tmp_path / "result.json").read_text() == complete
    (tmp_path / AT2_RESULTS_FILE).unlink()  # a driver on another machine: no record here
    _repair_result_json(tmp_path)
    assert (tmp_path / "result.json").read_text() == complete
