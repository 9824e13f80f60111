"""Keys that identify configurations (used to match configurations across databases and runs)."""

from __future__ import annotations

import json
from typing import Any, Iterable


def config_key(config: dict[str, Any]) -> str:
    """A key equal for equal configurations, nested ones included (key order does not matter)."""
    return json.dumps(config, sort_keys=True, default=repr)


def distinct(configs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``configs`` without repeats (by :func:`config_key`), in their first order."""
    seen: dict[str, dict[str, Any]] = {}
    for config in configs:
        seen.setdefault(config_key(config), config)
    return list(seen.values())
