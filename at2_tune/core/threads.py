"""A bounded torch thread count for the driver's GP work (no Ray imports).

The driver of a Ray Tune run shares its machine with the trials' processes. Torch's default
intra-op thread count (one per core) then oversubscribes the cores: on 2 shared cores with one
other busy process, a 4-task offline fit took 540 s with the default threads and 48 s with one.
``AT2Searcher(gp_threads=1)`` (the default) runs the model's work under :func:`torch_threads`
and gives the process its own setting back afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def checked_thread_count(count: int | None) -> int | None:
    """``count`` if it is a whole number >= 1 or ``None``; else a ``ValueError`` naming it."""
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or count < 1):
        raise ValueError(f"gp_threads={count!r} must be a whole number >= 1, or None to keep "
                         "torch's own thread count")
    return count


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (``None``: leave the setting)."""
    if checked_thread_count(count) is None:
        yield
        return
    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
