"""Connect the driver to Ray (a local instance or a running cluster) and check its resources
before any trial is created."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from at2_tune.errors import AT2Error

CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ClusterResources:
    """What the alive nodes offer: totals and the most one node has (a trial runs on one)."""

    nodes: int
    cpus: float
    gpus: float
    max_node_cpus: float
    max_node_gpus: float


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; a clear error for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AT2Error(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the "
                       "address `ray start --head` prints) or 'auto' (a cluster this machine "
                       "belongs to)")
    return host, int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at ``address`` (``ray.init`` would retry for minutes)."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise AT2Error(f"cannot reach a Ray cluster at --address {address} ({exc}); start "
                       f"its head node there (`ray start --head --port {port}`), check the "
                       "host, port and firewall, or leave --address out to run on this "
                       "machine") from None


def connect(address: str | None, log_to_driver: bool = False) -> bool:
    """``ray.init`` for ``address`` (``None``: a new local instance); returns whether this
    call started Ray (then the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address not in (None, "auto"):
        check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=log_to_driver,
                 configure_logging=False)
    except ConnectionError as exc:
        raise AT2Error(f"cannot connect to a Ray cluster with --address {address}: {exc}; run "
                       "the command on a node of a running cluster (`ray start --head` "
                       "first), or leave --address out to start Ray on this machine. A cluster "
                       "with token authentication (Ray's default) also needs "
                       "RAY_AUTH_MODE=token and its token (~/.ray/auth_token or "
                       "RAY_AUTH_TOKEN) in this process's environment") from None
    return True


def cluster_resources() -> ClusterResources:
    import ray

    alive = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    cpus = [float(r.get("CPU", 0.0)) for r in alive]
    gpus = [float(r.get("GPU", 0.0)) for r in alive]
    return ClusterResources(len(alive), sum(cpus), sum(gpus), max(cpus, default=0.0),
                            max(gpus, default=0.0))


def trial_resources(cpus: float, gpus: float | None,
                    resources: ClusterResources) -> dict[str, float]:
    """The resources of one trial, checked against the largest node: ``gpus=None`` takes one
    GPU when the cluster has one, else none."""
    if gpus is None:
        gpus = 1.0 if resources.max_node_gpus >= 1 else 0.0
    if gpus > resources.max_node_gpus:
        raise AT2Error(
            f"--gpus-per-trial {gpus:g} is more than any node of the cluster has (the most on "
            f"one node: {resources.max_node_gpus:g}, {resources.gpus:g} GPUs on "
            f"{resources.nodes} nodes); a trial runs on one node: use --gpus-per-trial <= "
            f"{resources.max_node_gpus:g} (0 trains on CPUs) or add GPU nodes")
    if cpus > resources.max_node_cpus:
        raise AT2Error(
            f"--cpus-per-trial {cpus:g} is more than any node of the cluster has (the most on "
            f"one node: {resources.max_node_cpus:g}); use --cpus-per-trial <= "
            f"{resources.max_node_cpus:g}")
    return {"cpu": float(cpus), "gpu": float(gpus)}
