"""The cluster launcher YAML parses and has what ``ray up`` and ``at2-tune tune`` need."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "cluster" / "aws-gpu.yaml"


def test_cluster_config_installs_the_project_on_gpu_workers() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    types = config["available_node_types"]
    assert config["head_node_type"] in types and config["provider"]["type"] == "aws"
    assert types["head"]["resources"] == {"CPU": 0}  # trials only run on workers
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith("g5.")
    assert types["gpu_worker"]["max_workers"] <= config["max_workers"]
    assert config["file_mounts"] == {"/home/ubuntu/at2-tune": "."}
    assert any("pip install -e \"/home/ubuntu/at2-tune" in c for c in config["setup_commands"])
    assert any(c.startswith("ray start --head --port=6379")
               for c in config["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])
