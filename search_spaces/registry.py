"""Look-up of the built-in search spaces by name."""

from __future__ import annotations

from search_spaces.errors import SearchSpaceError
from search_spaces._text import did_you_mean
from search_spaces.hyperrec import HYPERREC_SPACE
from search_spaces.lcbench import LCBENCH_SPACE
from search_spaces.space import SearchSpace

BUILTIN_SPACES: dict[str, SearchSpace] = {
    HYPERREC_SPACE.name: HYPERREC_SPACE,
    LCBENCH_SPACE.name: LCBENCH_SPACE,
}
"""The spaces of the databases at2-tune ships with, by name."""


def get_space(name: str) -> SearchSpace:
    """The built-in space called ``name`` (``"hyperrec"`` or ``"lcbench"``, any letter case).

    Raises:
        SearchSpaceError: an unknown name; the message lists the known ones.
    """
    key = name.lower() if isinstance(name, str) else name
    try:
        return BUILTIN_SPACES[key]
    except (KeyError, TypeError):
        hint = did_you_mean(name, BUILTIN_SPACES) if isinstance(name, str) else ""
        raise SearchSpaceError(f"unknown search space {name!r}{hint}; the known spaces are "
                               f"{sorted(BUILTIN_SPACES)!r}") from None
