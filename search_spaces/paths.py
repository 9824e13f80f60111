"""Conversion between nested configs and flat ``{"a/b": value}`` dicts.

Parameter names of nested spaces are "/"-joined key paths; a trainable receives the nested
dict. A non-empty dict is a group of keys; every other value, the empty dict included, is a
leaf.
"""

from __future__ import annotations

from typing import Any, Mapping

from search_spaces.errors import SearchSpaceError
from search_spaces._text import PATH_SEPARATOR, config_ref


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``{"a/b": 1, "c": 2}`` (insertion order kept)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            where = config_ref(prefix.rstrip(PATH_SEPARATOR)) if prefix else "config"
            raise SearchSpaceError(f"{where} has the key {key!r} of type {type(key).__name__}; "
                                   "config keys must be strings")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + PATH_SEPARATOR))
        else:
            flat[path] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *groups, leaf = path.split(PATH_SEPARATOR)
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return nested


def group_of(path: str) -> tuple[str, ...]:
    """All proper prefixes of ``path``: ``"a/b/c"`` -> ``("a", "a/b")``."""
    parts = path.split(PATH_SEPARATOR)
    return tuple(PATH_SEPARATOR.join(parts[:end]) for end in range(1, len(parts)))
