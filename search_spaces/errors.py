"""The error type of :mod:`search_spaces` (re-exported as ``at2_tune.errors.SearchSpaceError``).

It lives here so that the search spaces depend on nothing of the AT2 core.
"""

from __future__ import annotations


class SearchSpaceError(ValueError):
    """A configuration or a search-space definition is invalid; the message names the value,
    the constraint it broke and the fix."""
