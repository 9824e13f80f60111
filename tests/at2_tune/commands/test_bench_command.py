"""``at2-tune bench`` through the command line: the local Ray instances it starts keep their
session folders in a folder of the bench's own, removed when the bench ends."""

import json
import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from at2_tune import cli
from at2_tune.commands import bench

pytestmark = pytest.mark.integration  # starts a local Ray


def test_the_bench_keeps_rays_sessions_in_a_folder_it_removes(release_dir, tmp_path, monkeypatch,
                                                                ray_temp_dir):
    assert not ray.is_initialized()  # the bench starts its own
    monkeypatch.delenv("RAY_TMPDIR")  # as for a user who never set it
    monkeypatch.setattr(bench, "RAY_FOLDER_ROOT", str(ray_temp_dir))
    sessions = []
    remove = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path).name.startswith("at2b"):  # the bench's folder, just before it goes
            sessions.append(sorted(p.name for p in (Path(path) / "ray").glob("session_*")
                                   if p.name != "session_latest"))
        remove(path, *args, **kwargs)

    monkeypatch.setattr(bench.shutil, "rmtree", rmtree)
    out = tmp_path / "out"
    argv = ["bench", "--database", "hyperrec", "--pairs", "0", "--seed-profiles", "0",
            "--methods", "random", "--budget", "2", "--repeats", "1", "--no-plots",
            "--data-dir", str(release_dir), "--out", str(out)]
    assert cli.main(argv) == 0
    assert len(sessions) == 1 and len(sessions[0]) == 1  # Ray's one session was in it
    assert not [p for p in ray_temp_dir.iterdir() if p.name.startswith("at2b")]
    assert "RAY_TMPDIR" not in os.environ and not ray.is_initialized()
    (run,) = (out / "runs").glob("*.json")
    assert [row["epochs_spent"] for row in json.loads(run.read_text())["trace"]] == [1, 2]


def test_a_ray_tmpdir_the_user_set_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with bench.private_ray_folder() as folder:
        assert folder is None and os.environ["RAY_TMPDIR"] == str(tmp_path)
    assert os.environ["RAY_TMPDIR"] == str(tmp_path) and tmp_path.is_dir()
