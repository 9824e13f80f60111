"""The parameter kinds a :class:`~search_spaces.space.SearchSpace` is made of.

Every kind is a frozen dataclass that knows its domain, how to draw a value from a
``numpy.random.Generator`` and how to describe itself. Checking a user's value against the
domain lives in :mod:`search_spaces.validation`, turning values into numbers in
:mod:`search_spaces.encoding`.

A parameter may carry a :class:`Condition`: it is *active* (sampled, required, encoded) only
when an earlier categorical parameter takes one of the listed values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from search_spaces.errors import SearchSpaceError
from search_spaces._text import number

PRIMITIVE_CHOICE_TYPES = (str, int, float, bool, type(None))
"""Values a :class:`Categorical` may choose between (they must be hashable and comparable)."""


def same_choice(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` and ``1`` apart (Python's ``True == 1`` would merge them)."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and a == b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def choice_index(choices: tuple[Any, ...], value: Any) -> int | None:
    """Position of ``value`` in ``choices`` (type-aware, see :func:`same_choice`), else ``None``."""
    for index, choice in enumerate(choices):
        if same_choice(choice, value):
            return index
    return None


def _as_tuple(values: Any) -> tuple[Any, ...]:
    if isinstance(values, (list, tuple, set, frozenset)):
        return tuple(values)
    return (values,)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise SearchSpaceError(f"parameter name {name!r} is not a non-empty string; "
                               "name every parameter with a string such as 'lr'")


@dataclass(frozen=True)
class Condition:
    """Active only when the categorical parameter ``parent`` takes one of ``values``.

    ``Condition("optimizer", "Adam")`` and ``Condition("optimizer", ("Adam", "AdamW"))`` both
    work; a single value is stored as a one-element tuple.
    """

    parent: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        _check_name(self.parent)
        object.__setattr__(self, "values", _as_tuple(self.values))
        if not self.values:
            raise SearchSpaceError(f"the condition on {self.parent!r} lists no values; give "
                                   f"the value(s) of {self.parent!r} that activate the parameter")

    def holds(self, parent_value: Any) -> bool:
        """Whether ``parent_value`` is one of the activating values."""
        return choice_index(self.values, parent_value) is not None

    def describe(self) -> str:
        """``"optimizer='Adam'"`` or ``"scheduler in ['A', 'B']"``."""
        if len(self.values) == 1:
            return f"{self.parent}={self.values[0]!r}"
        return f"{self.parent} in {list(self.values)!r}"


@dataclass(frozen=True)
class Categorical:
    """One of a fixed list of primitive ``choices`` (str, int, float, bool or None), uniformly."""

    name: str
    choices: tuple[Any, ...]
    condition: Condition | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "choices", _as_tuple(self.choices))
        if not self.choices:
            raise SearchSpaceError(f"Categorical {self.name!r} has no choices; give at least one")
        for choice in self.choices:
            if not isinstance(choice, PRIMITIVE_CHOICE_TYPES) or (
                    isinstance(choice, float) and math.isnan(choice)):
                raise SearchSpaceError(
                    f"Categorical {self.name!r} has the choice {choice!r} of type "
                    f"{type(choice).__name__}; choices must be str, int, float, bool or None. "
                    "Choose between string keys and map them to objects in your trainable.")
        for index, choice in enumerate(self.choices):
            if choice_index(self.choices[:index], choice) is not None:
                raise SearchSpaceError(f"Categorical {self.name!r} lists the choice {choice!r} "
                                       "twice; list every choice once")

    @property
    def kind(self) -> str:
        return "categorical"

    def domain_text(self) -> str:
        """``"Choice['Adam', 'Momentum']"``."""
        return f"Choice{list(self.choices)!r}"

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly drawn choice."""
        return self.choices[int(rng.integers(len(self.choices)))]


@dataclass(frozen=True)
class Integer:
    """An integer in ``[low, high]`` (both inclusive), uniform or log-uniform.

    With ``q > 1`` the values are the multiples of ``q`` in ``[low, high]`` (both bounds must be
    multiples of ``q``). Log-uniform sampling draws ``floor(exp(U(log low, log(high + 1))))``
    (on the grid indices when ``q > 1``), exactly like Ray Tune's ``lograndint``.
    """

    name: str
    low: int
    high: int
    log: bool = False
    q: int = 1
    condition: Condition | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_name(self.name)
        for label, bound in (("low", self.low), ("high", self.high), ("q", self.q)):
            if isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, np.integer)):
                raise SearchSpaceError(f"Integer {self.name!r}: {label}={bound!r} is not an int; "
                                       "use Float for non-integer ranges")
            object.__setattr__(self, label, int(bound))
        if self.q < 1:
            raise SearchSpaceError(f"Integer {self.name!r}: q={self.q} must be >= 1")
        if self.low > self.high:
            raise SearchSpaceError(f"Integer {self.name!r}: low={self.low} > high={self.high}; "
                                   "swap the bounds")
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"Integer {self.name!r}: log scale needs low > 0, got "
                                   f"low={self.low}; use log=False or a positive low")
        if self.low % self.q or self.high % self.q:
            raise SearchSpaceError(f"Integer {self.name!r}: bounds [{self.low}, {self.high}] "
                                   f"must be multiples of q={self.q}")

    @property
    def kind(self) -> str:
        return "integer"

    def domain_text(self) -> str:
        """``"IntUniform[32, 128]"``, ``"IntLogUniform[16, 512]"``, ``"IntUniform[8, 64, q=8]"``."""
        step = f", q={self.q}" if self.q != 1 else ""
        return f"{'IntLogUniform' if self.log else 'IntUniform'}[{self.low}, {self.high}{step}]"

    def sample(self, rng: np.random.Generator) -> int:
        """A uniform (or log-uniform) integer on the grid."""
        first, last = self.low // self.q, self.high // self.q
        if self.log:
            drawn = rng.uniform(math.log(first), math.log(last + 1))
            index = min(max(math.floor(math.exp(drawn)), first), last)
        else:
            index = int(rng.integers(first, last + 1))
        return int(index * self.q)


@dataclass(frozen=True)
class Float:
    """A float in ``[low, high]``, uniform or log-uniform; with ``q`` rounded to a multiple of q.

    Like Ray Tune's ``quniform``/``qloguniform``, both bounds must be multiples of ``q``.
    """

    name: str
    low: float
    high: float
    log: bool = False
    q: float | None = None
    condition: Condition | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_name(self.name)
        for label, bound in (("low", self.low), ("high", self.high)):
            if isinstance(bound, (bool, np.bool_)) or not isinstance(
                    bound, (int, float, np.integer, np.floating)) or not math.isfinite(bound):
                raise SearchSpaceError(f"Float {self.name!r}: {label}={bound!r} is not a "
                                       "finite number")
            object.__setattr__(self, label, float(bound))
        if not self.low < self.high:
            raise SearchSpaceError(f"Float {self.name!r}: low={self.low!r} must be below "
                                   f"high={self.high!r}")
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"Float {self.name!r}: log scale needs low > 0, got "
                                   f"low={self.low!r}; use log=False or a positive low")
        if self.q is not None:
            if not isinstance(self.q, (int, float, np.integer, np.floating)) or not self.q > 0:
                raise SearchSpaceError(f"Float {self.name!r}: q={self.q!r} must be a positive "
                                       "number or None")
            object.__setattr__(self, "q", float(self.q))
            if not (on_grid(self.low, self.q) and on_grid(self.high, self.q)):
                raise SearchSpaceError(f"Float {self.name!r}: bounds [{self.low!r}, "
                                       f"{self.high!r}] must be multiples of q={self.q!r}")

    @property
    def kind(self) -> str:
        return "float"

    def domain_text(self) -> str:
        """``"LogUniform(0.0001, 0.1)"``, ``"Uniform(0, 1)"``, ``"QUniform(0, 1, q=0.1)"``."""
        base = "LogUniform" if self.log else "Uniform"
        if self.q is None:
            return f"{base}({number(self.low)}, {number(self.high)})"
        return f"Q{base}({number(self.low)}, {number(self.high)}, q={number(self.q)})"

    def sample(self, rng: np.random.Generator) -> float:
        """A uniform (or log-uniform) float, rounded to the q-grid when ``q`` is set."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = float(rng.uniform(self.low, self.high))
        if self.q is not None:
            exact = round(value / self.q) * self.q
            tidy = float(f"{exact:.12g}")  # 3 * 0.1 -> 0.3, not 0.30000000000000004
            value = tidy if abs(tidy - exact) <= 1e-9 * self.q else exact
        return float(min(max(value, self.low), self.high))


@dataclass(frozen=True)
class Ratio:
    """A float derived from another parameter: ``min(cap, base * U(factor_low, factor_high))``.

    ``encode_low``/``encode_high`` is the interval the value is scaled linearly on when encoded;
    left as ``None`` they are filled in by the :class:`SearchSpace` from the base's range
    (``base.low * factor_low``, ``min(cap, base.high * factor_high)``).
    """

    name: str
    base: str
    factor_low: float
    factor_high: float
    cap: float | None = None
    encode_low: float | None = None
    encode_high: float | None = None
    condition: Condition | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_name(self.base)
        if not 0 < self.factor_low < self.factor_high:
            raise SearchSpaceError(f"Ratio {self.name!r}: need 0 < factor_low < factor_high, "
                                   f"got [{self.factor_low!r}, {self.factor_high!r}]")
        if self.cap is not None and not self.cap > 0:
            raise SearchSpaceError(f"Ratio {self.name!r}: cap={self.cap!r} must be positive")
        if (self.encode_low is None) != (self.encode_high is None):
            raise SearchSpaceError(f"Ratio {self.name!r}: give both encode_low and encode_high "
                                   "or neither")
        if self.encode_low is not None and not self.encode_low < self.encode_high:
            raise SearchSpaceError(f"Ratio {self.name!r}: encode_low={self.encode_low!r} must be "
                                   f"below encode_high={self.encode_high!r}")

    @property
    def kind(self) -> str:
        return "ratio"

    @property
    def factor_key(self) -> str:
        """The key of the factor in a Ray Tune param_space: ``"max_lr_factor"``."""
        return f"{self.name}_factor"

    def derive(self, base_value: float, factor: float) -> float:
        """``min(cap, base_value * factor)``."""
        value = float(base_value) * float(factor)
        return min(value, float(self.cap)) if self.cap is not None else value

    def value_range(self, base_value: float) -> tuple[float, float]:
        """The values allowed for a given base value."""
        return self.derive(base_value, self.factor_low), self.derive(base_value, self.factor_high)

    def domain_text(self) -> str:
        """``"min(1, lr * U(1.1, 1.5))"`` or ``"lr * U(0.5, 0.9)"``."""
        product = f"{self.base} * U({number(self.factor_low)}, {number(self.factor_high)})"
        return f"min({number(self.cap)}, {product})" if self.cap is not None else product

    def sample(self, rng: np.random.Generator, base_value: float) -> float:
        """``min(cap, base_value * factor)`` with a uniformly drawn factor."""
        return self.derive(base_value, rng.uniform(self.factor_low, self.factor_high))


Parameter = Union[Categorical, Integer, Float, Ratio]
"""Any parameter kind."""

NUMERIC_KINDS = (Integer, Float, Ratio)


def on_grid(value: float, q: float) -> bool:
    """Whether ``value`` is a multiple of ``q`` up to a relative tolerance of 1e-9."""
    steps = value / q
    return math.isclose(steps, round(steps), rel_tol=1e-9, abs_tol=1e-9)
