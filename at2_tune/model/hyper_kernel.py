"""The learned kernel over (nested) hyperparameter configurations."""

from __future__ import annotations

from typing import Sequence

import torch
from gpytorch.constraints import Interval, Positive
from gpytorch.kernels import Kernel
from torch import nn


class ConfigEncoder(nn.Module):
    """Maps encoded configurations to a small feature vector.

    Numeric dimensions (already scaled to [0, 1], inactive ones 0) are concatenated with a
    learned embedding of each categorical choice and passed through ``Linear-Tanh-Linear``.
    """

    def __init__(self, n_numeric: int, categorical_sizes: Sequence[int], embedding_dim: int = 2,
                 hidden_dim: int = 32, feature_dim: int = 8) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(size, embedding_dim) for size in categorical_sizes)
        width = n_numeric + embedding_dim * len(categorical_sizes)
        self.mlp = nn.Sequential(nn.Linear(width, hidden_dim), nn.Tanh(),
                                 nn.Linear(hidden_dim, feature_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., n, n_numeric + n_categorical)`` -> features ``(..., n, feature_dim)``."""
        numeric = x[..., : self.n_numeric]
        parts = [numeric]
        for column, embedding in enumerate(self.embeddings):
            index = x[..., self.n_numeric + column].round().long()
            parts.append(embedding(index))
        return self.mlp(torch.cat(parts, dim=-1))


class HyperparameterKernel(Kernel):
    r"""Degree-2 polynomial kernel on learned configuration features.

    .. math:: k(x, x') = (\phi(x)^\top \phi(x') + c)^2

    with :math:`\phi` a :class:`ConfigEncoder` and a learned offset ``c > 0``.

    Inputs: ``(..., n, n_numeric + n_categorical)``: numeric encodings in [0, 1] followed by
    categorical indices stored as floats.
    """

    is_stationary = False

    def __init__(self, n_numeric: int, categorical_sizes: Sequence[int], embedding_dim: int = 2,
                 hidden_dim: int = 32, feature_dim: int = 8,
                 offset_constraint: Interval | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = ConfigEncoder(n_numeric, categorical_sizes, embedding_dim, hidden_dim,
                                     feature_dim)
        self.register_parameter("raw_offset", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_offset", offset_constraint or Positive())

    @property
    def offset(self) -> torch.Tensor:
        return self.raw_offset_constraint.transform(self.raw_offset)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False,
                **params) -> torch.Tensor:
        """``(..., n, d)``, ``(..., m, d)`` -> ``(..., n, m)`` (``(..., n)`` if diag)."""
        f1 = self.encoder(x1)
        f2 = f1 if x2 is x1 else self.encoder(x2)
        if diag:
            return ((f1 * f2).sum(-1) + self.offset) ** 2
        return (f1 @ f2.transpose(-1, -2) + self.offset) ** 2
