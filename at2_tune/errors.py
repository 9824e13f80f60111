"""Exception types of at2-tune.

Every error a user can trigger with bad input derives from :class:`AT2Error`, or is a
:class:`SearchSpaceError` (defined in ``search_spaces``, which depends on nothing of at2_tune);
catch :data:`USER_ERRORS` to catch both without catching programming errors. Messages name the offending
value, the constraint it broke and how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AT2Error", "ChecksumError", "DatabaseError", "DatabaseNotFoundError",
           "SearchSpaceError", "Terminated", "UnknownDatabaseError", "UnknownTaskError",
           "UnsafePickleError", "USER_ERRORS"]


class AT2Error(Exception):
    """Base class of all errors raised by at2-tune for bad input or bad files."""


class Terminated(KeyboardInterrupt):
    """A SIGTERM (``kill``, a job scheduler's or CI's time limit) that stops a command as
    Ctrl-C does (``at2_tune.bench.harness.terminate_as_interrupt``); the CLI exits with 143."""


class DatabaseError(AT2Error):
    """A learning-curve database could not be located, fetched, verified or parsed."""


class DatabaseNotFoundError(DatabaseError, FileNotFoundError):
    """A database file is missing from the directory it was looked up in."""


class ChecksumError(DatabaseError):
    """A file's SHA-256 does not match the checksum pinned in the code."""


class UnsafePickleError(DatabaseError):
    """A pickle asked for a global that the restricted unpickler does not allow."""


class UnknownDatabaseError(DatabaseError, KeyError):
    """A database name that at2-tune does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownTaskError(AT2Error, KeyError):
    """A task name that is not in the database."""

    def __str__(self) -> str:
        return str(self.args[0])




def __getattr__(name: str) -> Any:
    """``SearchSpaceError`` and ``USER_ERRORS = (AT2Error, SearchSpaceError)`` (every error type
    bad input raises: ``except USER_ERRORS``), imported on first use so that importing these
    errors (as ``trainers`` does) does not import the search spaces."""
    if name in ("SearchSpaceError", "USER_ERRORS"):
        from search_spaces.errors import SearchSpaceError

        return SearchSpaceError if name == "SearchSpaceError" else (AT2Error, SearchSpaceError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
