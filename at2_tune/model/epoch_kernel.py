"""The learning-curve kernel over training progress ``t = epoch / max_epochs``."""

from __future__ import annotations

import torch
from gpytorch.constraints import Interval, Positive
from gpytorch.kernels import Kernel


class EpochKernel(Kernel):
    r"""Freeze-thaw style kernel over training progress.

    .. math::
        k(t, t') = 1 + \left(\frac{b}{t + t' + b}\right)^a - \left(\frac{b}{t + b}\right)^a
                   - \left(\frac{b}{t' + b}\right)^a

    It is :math:`\int (1 - e^{-\lambda t})(1 - e^{-\lambda t'})\,\mathrm{Gamma}(\lambda; a, b)\,d\lambda`,
    hence positive semi-definite, zero at ``t = 0`` and increasing in ``t``: curves that start
    at a common value and saturate at rates drawn from a Gamma distribution. ``a`` (shape) and
    ``b`` (rate) are positive. The kernel has no outputscale of its own: the model puts
    one :class:`~gpytorch.kernels.ScaleKernel` around the product of all kernels.

    Inputs are ``(..., n, 1)`` progress values; their absolute value is used, so learned
    inducing points keep a positive epoch coordinate.
    """

    is_stationary = False

    def __init__(self, alpha_constraint: Interval | None = None,
                 beta_constraint: Interval | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.register_parameter("raw_alpha", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1)))
        self.register_parameter("raw_beta", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1)))
        self.register_constraint("raw_alpha", alpha_constraint or Positive())
        self.register_constraint("raw_beta", beta_constraint or Positive())
        self.alpha = 1.0
        self.beta = 1.0

    @property
    def alpha(self) -> torch.Tensor:
        return self.raw_alpha_constraint.transform(self.raw_alpha)

    @alpha.setter
    def alpha(self, value: float | torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=self.raw_alpha.dtype).expand_as(self.raw_alpha)
        self.initialize(raw_alpha=self.raw_alpha_constraint.inverse_transform(value))

    @property
    def beta(self) -> torch.Tensor:
        return self.raw_beta_constraint.transform(self.raw_beta)

    @beta.setter
    def beta(self, value: float | torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=self.raw_beta.dtype).expand_as(self.raw_beta)
        self.initialize(raw_beta=self.raw_beta_constraint.inverse_transform(value))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False,
                **params) -> torch.Tensor:
        """``x1``: ``(..., n, 1)``, ``x2``: ``(..., m, 1)`` -> ``(..., n, m)`` (``(..., n)`` if diag)."""
        a, b = self.alpha, self.beta  # (*batch, 1): broadcasts over the n points of diag
        t1 = x1[..., 0].abs()
        t2 = x2[..., 0].abs()
        if diag:
            total = t1 + t2
        else:
            t1, t2 = t1.unsqueeze(-1), t2.unsqueeze(-2)
            total = t1 + t2
            a, b = a.unsqueeze(-1), b.unsqueeze(-1)
        return 1 + (b / (total + b)) ** a - (b / (t1 + b)) ** a - (b / (t2 + b)) ** a
