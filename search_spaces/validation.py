"""Checks one config value against its parameter, with messages that say how to fix it.

The functions here raise :class:`InvalidConfigError` (a
:class:`~at2_tune.errors.SearchSpaceError`, hence a ``ValueError``) whose ``key`` attribute is
the offending parameter name, so that wrappers (e.g. the database converters) can point at the
field in their own vocabulary.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from search_spaces.errors import SearchSpaceError
from search_spaces._text import approx, closest, config_ref, number, value_repr
from search_spaces.params import (Categorical, Float, Integer, Parameter, Ratio, choice_index,
                                  on_grid)


class InvalidConfigError(SearchSpaceError):
    """A config does not fit its search space; ``key`` names the offending parameter."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _type_name(value: Any) -> str:
    return type(value).__name__


def allowed_text(param: Parameter, base_value: float | None = None) -> str:
    """What to write instead: ``"a value in [0.0001, 0.1]"``, ``"one of ['Adam', 'Momentum']"``."""
    if isinstance(param, Categorical):
        return f"one of {list(param.choices)!r}"
    if isinstance(param, Integer):
        if param.q != 1:
            return f"a multiple of {param.q} in [{param.low}, {param.high}]"
        return f"an int in [{param.low}, {param.high}]"
    if isinstance(param, Float):
        grid = f" that is a multiple of {number(param.q)}" if param.q is not None else ""
        return f"a value in [{number(param.low)}, {number(param.high)}]{grid}"
    if base_value is None:
        return f"{param.name} = {param.domain_text()}"
    low, high = param.value_range(base_value)
    return (f"a value in [{approx(low)}, {approx(high)}] "
            f"(= {param.domain_text()} with {param.base}={value_repr(base_value)})")


def _fail(param: Parameter, value: Any, space_name: str, problem: str, fix: str) -> None:
    raise InvalidConfigError(
        f"{config_ref(param.name)}={value_repr(value)} {problem} of the {space_name!r} space; "
        f"{fix}", key=param.name)


def check_value(param: Parameter, value: Any, space_name: str,
                base_value: float | None = None) -> Any:
    """``value`` as a plain Python value of ``param``'s domain, or an :class:`InvalidConfigError`.

    Integers accept ``int``, numpy integers and integral floats (``32.0``); bools are never
    numbers. ``base_value`` is the (checked) value of a :class:`Ratio`'s base parameter.
    """
    if isinstance(param, Categorical):
        return _check_choice(param, value, space_name)
    if isinstance(param, Integer):
        return _check_integer(param, value, space_name)
    number_value = _check_finite_number(param, value, space_name)
    if isinstance(param, Float):
        return _check_float(param, number_value, space_name)
    return _check_ratio(param, number_value, space_name, base_value)


def _check_choice(param: Categorical, value: Any, space_name: str) -> Any:
    try:
        index = choice_index(param.choices, value)
    except TypeError:
        index = None
    if index is None:
        labels = [str(choice) for choice in param.choices]
        match = closest(str(value), labels)
        hint = f" (did you mean {param.choices[labels.index(match)]!r}?)" if match else ""
        _fail(param, value, space_name, f"is not one of {param.domain_text()}",
              f"choose one of {list(param.choices)!r}{hint}")
    return param.choices[index]


def _check_integer(param: Integer, value: Any, space_name: str) -> int:
    if _is_bool(value):
        _fail(param, value, space_name, f"is a bool, not an integer, for {param.domain_text()}",
              f"use {allowed_text(param)}")
    if isinstance(value, (int, np.integer)):
        integer = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(
            value).is_integer():
        integer = int(value)
    else:
        problem = "is not a whole number" if isinstance(value, (float, np.floating)) else (
            f"is a {_type_name(value)}, not an integer,")
        _fail(param, value, space_name, f"{problem} for {param.domain_text()}",
              f"use {allowed_text(param)}")
    if not param.low <= integer <= param.high:
        _fail(param, value, space_name, f"is outside {param.domain_text()}",
              f"choose {allowed_text(param)}")
    if integer % param.q:
        below = integer - integer % param.q
        _fail(param, value, space_name, f"is not a multiple of q={param.q} in "
              f"{param.domain_text()}", f"choose a value on the grid, e.g. {below} or "
              f"{below + param.q}")
    return integer


def _check_finite_number(param: Parameter, value: Any, space_name: str) -> float:
    if _is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating)):
        _fail(param, value, space_name, f"is a {_type_name(value)}, not a number, for "
              f"{param.domain_text()}", f"use {allowed_text(param)}")
    if not math.isfinite(value):
        _fail(param, value, space_name, f"is not a finite number for {param.domain_text()}",
              f"use {allowed_text(param)}")
    return float(value)


def _check_float(param: Float, value: float, space_name: str) -> float:
    if not param.low <= value <= param.high:
        _fail(param, value, space_name, f"is outside {param.domain_text()}",
              f"choose {allowed_text(param)}")
    if param.q is not None and not on_grid(value, param.q):
        below = math.floor(value / param.q) * param.q
        _fail(param, value, space_name, f"is not a multiple of q={number(param.q)} in "
              f"{param.domain_text()}", f"choose a value on the grid, e.g. {approx(below)} or "
              f"{approx(below + param.q)}")
    return value


def _check_ratio(param: Ratio, value: float, space_name: str,
                 base_value: float | None) -> float:
    if base_value is None:  # the space guarantees the base is checked first; defensive only
        raise InvalidConfigError(f"{config_ref(param.name)} needs {config_ref(param.base)} "
                                 "to be checked first", key=param.name)
    low, high = param.value_range(base_value)
    tolerance = 1e-9 * max(abs(low), abs(high))
    if not low - tolerance <= value <= high + tolerance:
        factor = value / base_value if base_value else math.inf
        _fail(param, value, space_name,
              f"is {approx(factor)} x {config_ref(param.base)}={value_repr(base_value)}, outside "
              f"{param.domain_text()}", f"choose {allowed_text(param, base_value)}")
    return value
