"""The column layout of the surrogate's input rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class InputLayout:
    """Columns of an input row: ``[numeric..., categorical..., task, progress]``.

    ``numeric`` holds a configuration's encoding in [0, 1] (inactive dimensions 0),
    ``categorical`` its choice indices, ``task`` the task index and ``progress`` the training
    progress ``epoch / max_epochs`` in (0, 1]; indices are stored as floats.
    """

    n_numeric: int
    n_categorical: int

    @property
    def config_columns(self) -> list[int]:
        return list(range(self.n_numeric + self.n_categorical))

    @property
    def task_column(self) -> int:
        return self.n_numeric + self.n_categorical

    @property
    def progress_column(self) -> int:
        return self.task_column + 1

    @property
    def width(self) -> int:
        return self.progress_column + 1

    def rows(self, configs: torch.Tensor, tasks: torch.Tensor, progress: torch.Tensor) -> torch.Tensor:
        """Input rows ``(n, width)`` from encoded configs ``(n, n_numeric + n_categorical)``,
        task indices ``(n,)`` and progress values ``(n,)``."""
        return torch.cat([configs, tasks.to(configs.dtype).unsqueeze(-1),
                          progress.to(configs.dtype).unsqueeze(-1)], dim=-1)
