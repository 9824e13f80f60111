"""Trials' staging folders: removed on return, and by the next trial when their process was killed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.trainers.helpers import ended_pid
from trainers import staging


def _stage(folder: Path, name: str) -> Path:
    path = folder / name
    (path / "at2_run").mkdir(parents=True)
    (path / "at2_run" / "checkpoint.pt").write_bytes(b"\0" * 1024)
    return path


def test_only_folders_of_ended_processes_on_this_host_are_removed(tmp_path: Path) -> None:
    host = staging._host()
    killed = _stage(tmp_path, f"at2-trial-{host}-{ended_pid()}-a1b_2c")
    running = _stage(tmp_path, f"at2-trial-{host}-{os.getpid()}-x9y8z7")
    other_host = _stage(tmp_path, f"at2-trial-{host}x-{ended_pid()}-k3j4h5")
    older_name = _stage(tmp_path, "at2-trial-q1w2e3r4")  # at2-tune before the owner's name
    unrelated = _stage(tmp_path, f"other-{host}-{ended_pid()}-abc")

    assert staging.remove_orphaned(tmp_path) == [killed]

    assert not killed.exists()
    assert all(p.is_dir() for p in (running, other_host, older_name, unrelated))
    assert staging.remove_orphaned(tmp_path) == []


def test_a_host_name_with_dashes_still_names_its_own_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging.socket, "gethostname", lambda: "gpu-node-7.cluster")
    killed = _stage(tmp_path, f"at2-trial-gpu_node_7.cluster-{ended_pid()}-zz_1")
    assert staging.remove_orphaned(tmp_path) == [killed]


def test_a_staging_folder_is_named_after_its_process_and_removed_on_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    orphan = _stage(tmp_path, f"at2-trial-{staging._host()}-{ended_pid()}-o1")

    with pytest.raises(RuntimeError, match="trial failed"):
        with staging.staging_folder() as folder:
            assert not orphan.exists()  # the killed trial's folder went first
            assert folder.parent == tmp_path
            assert folder.name.startswith(f"at2-trial-{staging._host()}-{os.getpid()}-")
            (folder / "at2_run").mkdir()
            assert staging.remove_orphaned(tmp_path) == []  # its own folder is kept
            raise RuntimeError("trial failed")

    assert list(tmp_path.iterdir()) == []
