"""Scaling of numeric parameter values to ``[0, 1]`` for the surrogate model.

Linear parameters map ``[low, high]`` linearly, log parameters map ``[log low, log high]``
linearly (the base of the logarithm does not matter), :class:`~search_spaces.params.Ratio`
parameters map ``[encode_low, encode_high]`` linearly. Inactive parameters encode as exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from search_spaces.params import Float, Integer, Ratio


@dataclass(frozen=True)
class NumericScaling:
    """Per-dimension bounds (already log-transformed where ``log`` is set)."""

    low: np.ndarray
    high: np.ndarray
    log: np.ndarray

    @classmethod
    def of(cls, parameters: Sequence[Integer | Float | Ratio]) -> "NumericScaling":
        """The scaling of ``parameters`` (Ratio encode bounds must be filled in)."""
        low, high, log = [], [], []
        for param in parameters:
            if isinstance(param, Ratio):
                low.append(float(param.encode_low))
                high.append(float(param.encode_high))
                log.append(False)
            else:
                low.append(np.log10(param.low) if param.log else float(param.low))
                high.append(np.log10(param.high) if param.log else float(param.high))
                log.append(bool(param.log))
        return cls(np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64),
                   np.asarray(log, dtype=bool))

    def scale(self, raw: np.ndarray) -> np.ndarray:
        """Map raw values ``(N, D)`` (NaN = inactive) to ``[0, 1]`` (inactive -> 0)."""
        raw = np.asarray(raw, dtype=np.float64)
        inactive = np.isnan(raw)
        with np.errstate(divide="ignore", invalid="ignore"):
            transformed = np.where(self.log, np.log10(np.where(inactive, 1.0, raw)), raw)
        span = self.high - self.low
        safe_span = np.where(span > 0, span, 1.0)
        scaled = np.where(span > 0, (transformed - self.low) / safe_span, 0.0)
        scaled = np.clip(scaled, 0.0, 1.0)
        scaled[inactive] = 0.0
        return scaled
