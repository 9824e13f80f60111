"""Small text helpers shared by the error messages and tables of :mod:`search_spaces`."""

from __future__ import annotations

import difflib
from typing import Any, Iterable

PATH_SEPARATOR = "/"
"""Joins the keys of a nested config into one parameter name: ``"optimizer/lr"``."""


def config_ref(name: str) -> str:
    """``"optimizer/lr"`` -> ``"config['optimizer']['lr']"`` (how a user indexes the value)."""
    return "config" + "".join(f"[{part!r}]" for part in name.split(PATH_SEPARATOR))


def number(value: float) -> str:
    """A declared bound or computed limit, short but exact enough to act on (``0.00011``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    short = f"{value:.6g}"
    return short if float(short) == value else repr(value)


def approx(value: float) -> str:
    """A computed limit or ratio to 10 significant digits (``0.3``, not ``0.30000000000000004``)."""
    return f"{value:.10g}"


def value_repr(value: Any) -> str:
    """A user-supplied value exactly as given (numpy scalars shown as Python values)."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return repr(item())
        except (TypeError, ValueError):
            pass
    return repr(value)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitive), or ``None`` when none is close."""
    candidates = list(candidates)
    lowered = {candidate.lower(): candidate for candidate in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'lr'?)"`` or the empty string."""
    match = closest(word, candidates)
    return f" (did you mean {match!r}?)" if match is not None else ""


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A plain-text table whose columns are padded to their widest cell."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
