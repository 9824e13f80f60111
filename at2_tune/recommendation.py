"""AT2's recommendation of a Ray Tune experiment, read after the run (no Ray import)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from at2_tune.errors import AT2Error

RECOMMENDATION_FILE = "at2-recommendation.json"
"""Written by ``AT2Searcher`` next to its state at every save (Tune saves at the end of a run)."""


def load_recommendation(experiment_path: str | os.PathLike) -> dict[str, Any]:
    """AT2's recommendation of a finished (or restored) Ray Tune experiment: the dict of
    ``AT2Searcher.recommendation()``, read from the experiment folder (``ResultGrid
    .experiment_path``, or the folder ``at2-tune tune`` names; a storage URI such as
    ``s3://bucket/experiment`` or ``file:///shared/experiment`` too)."""
    where = str(experiment_path)
    missing = AT2Error(f"{where} holds no {RECOMMENDATION_FILE}: it is not the folder of an "
                       "experiment tuned with AT2Searcher, or the run observed no result yet; "
                       "pass the experiment folder (ResultGrid.experiment_path)")
    if "://" not in where:
        path = Path(where) / RECOMMENDATION_FILE
        if not path.is_file():
            raise missing
        return json.loads(path.read_text())
    import pyarrow.fs

    filesystem, folder = pyarrow.fs.FileSystem.from_uri(where)
    try:
        with filesystem.open_input_stream(f"{folder.rstrip('/')}/{RECOMMENDATION_FILE}") as stream:
            return json.loads(stream.read().decode())
    except (FileNotFoundError, OSError):
        raise missing from None
