"""A real two-node Ray cluster on this machine: ``at2-tune tune --address`` spreads trials over
both nodes. The nodes are child processes stopped by their own process groups (never
``ray stop``, which would stop every Ray process of the machine)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

# a real two-node cluster: `-m cluster` runs it alone, `-m "not cluster"` leaves it out
pytestmark = [pytest.mark.integration, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[3]
RAY = str(Path(sys.executable).with_name("ray"))
NODE_OPTIONS = ["--block", "--num-cpus", "1", "--object-store-memory", "100000000",
                "--disable-usage-stats"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(arguments: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "w") as out:  # own session: the node and everything it starts, one group
        return subprocess.Popen([RAY, "start", *arguments], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)


def _stop(node: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait_s)
            if not _group_alive(node.pid):
                return
        except subprocess.TimeoutExpired:
            continue


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    return True
            except ProcessLookupError:
                continue
    return False


def _processes_using(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for_nodes(address: str, count: int, timeout_s: float = 120.0) -> None:
    """Until ``count`` nodes are alive (asked in a separate driver process)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True,
                              text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{count} Ray nodes did not come up at {address}")


@pytest.fixture
def two_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from ray.util import get_node_ip_address

    port = _free_port()
    temp_dir = f"/tmp/at2n{os.getpid()}"  # short: Ray's socket paths must stay < 108 bytes
    address = f"{get_node_ip_address()}:{port}"  # Ray maps 127.0.0.1 to this address anyway
    # token authentication with the cluster's own token, for both nodes and every driver
    # (child processes only: Ray reads these settings once per process, and this one never
    # connects), as on a real cluster; nothing depends on a token file in the home folder
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    head = _start(["--head", "--port", str(port), "--temp-dir", temp_dir,
                   "--include-dashboard=false", "--resources", '{"head_node": 1}',
                   *NODE_OPTIONS], tmp_path / "head.log", dict(os.environ))
    nodes = [head]
    try:
        time.sleep(2.0)
        nodes.append(_start(["--address", address, "--resources", '{"second_node": 1}',
                             *NODE_OPTIONS], tmp_path / "second.log", dict(os.environ)))
        _wait_for_nodes(address, 2)
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        _stop_leftovers(temp_dir)
    assert _processes_using(temp_dir) == []  # both nodes and all their workers are gone
    shutil.rmtree(temp_dir, ignore_errors=True)  # their logs and sockets


def _stop_leftovers(temp_dir: str, timeout_s: float = 20.0) -> None:
    """Worker processes of the two nodes that outlive their node's process group (they name
    the nodes' own temp folder on their command line): wait for them, then kill them by PID."""
    deadline = time.monotonic() + timeout_s
    while _processes_using(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _processes_using(temp_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    time.sleep(0.5)


def test_trials_run_on_both_nodes(two_nodes: str, tmp_path: Path) -> None:
    """The command runs as a user runs it: its own process (Ray reads its authentication
    settings once per process, so an in-process driver would keep this test process's)."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "at2_tune.cli", "tune", "--dataset", "synthetic",
               "--synthetic-images", "256", "--synthetic-classes", "3", "--image-size", "8",
               "--prior", "none", "--samples", "4", "--epochs", "2", "--budget-epochs", "6",
               "--concurrency", "2", "--cpus-per-trial", "1", "--address", two_nodes,
               "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout[-4000:])  # shown with pytest -s
    status = [line for line in done.stdout.splitlines() if line.startswith("AT2 | trial")]
    assert len(status) == 6 and "6/6 epochs" in status[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_spent"] == 6 and sum(t["epochs"] for t in summary["trials"]) == 6
    nodes = {t["node_id"] for t in summary["trials"]}
    assert len(nodes) == 2 and None not in nodes  # one CPU per node: the two slots are apart
    assert summary["recommended_trial"] in {t["trial_id"] for t in summary["trials"]}
