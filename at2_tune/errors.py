"""Exception types of at2-tune.

Every error a user can trigger with bad input derives from :class:`AT2Error`, so callers can
catch the project's errors without catching programming errors. Messages name the offending
value, the constraint it broke and how to fix it.
"""

from __future__ import annotations


class AT2Error(Exception):
    """Base class of all errors raised by at2-tune for bad input or bad files."""


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


class SearchSpaceError(AT2Error, ValueError):
    """A configuration or a search-space definition is invalid."""
