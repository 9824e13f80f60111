"""Keys that identify configurations (used to match configurations across databases and runs)."""

from __future__ import annotations

import json
from typing import Any


def config_key(config: dict[str, Any]) -> str:
    """A key equal for equal configurations, nested ones included (key order does not matter)."""
    return json.dumps(config, sort_keys=True, default=repr)
