"""The notices every command printed at start that are not the user's business, hidden.

Its own module so that the command line (``at2_tune.cli``) and the bench's spawned workers
(``at2_tune.commands.bench``) both call it without importing each other.
"""

from __future__ import annotations

import logging
import warnings

# linear_operator (under gpytorch) decorates a function with torch.jit.script at import, which
# PyTorch 2.14 deprecates with a FutureWarning; a user of the command should see only ours.
JIT_WARNING = "`torch.jit.script` is deprecated"
RAY_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
"""Ray's notice at every start that token authentication is on (its default); the warning it
prints when authentication is *off* is kept."""
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropNotice(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


_TOKEN_NOTICE_FILTER = _DropNotice(RAY_TOKEN_NOTICE)


def quiet_notices() -> None:
    """Hide the two notices every command printed at start that are not the user's business
    (the deprecation warning of a dependency, Ray's token-authentication default)."""
    warnings.filterwarnings("ignore", message=JIT_WARNING, category=FutureWarning)
    logger = logging.getLogger(RAY_AUTH_LOGGER)
    if _TOKEN_NOTICE_FILTER not in logger.filters:
        logger.addFilter(_TOKEN_NOTICE_FILTER)
