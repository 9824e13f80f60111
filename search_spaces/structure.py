"""Checks that a list of parameters forms a well-defined search space.

Conditions must refer to an earlier categorical parameter and to values it can take; a
:class:`~search_spaces.params.Ratio` must refer to an earlier positive numeric parameter that
is active whenever the ratio is; names, constants and Ray factor keys must not collide and no
name may be both a value and a group of nested keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from search_spaces.errors import SearchSpaceError
from search_spaces._text import PATH_SEPARATOR
from search_spaces.params import (Categorical, Condition, Float, Integer, Parameter, Ratio,
                                  choice_index)
from search_spaces.paths import group_of

PARAMETER_TYPES = (Categorical, Integer, Float, Ratio)


def checked_parameters(space_name: str, parameters: Sequence[Parameter],
                       constants: Mapping[str, Any]) -> tuple[Parameter, ...]:
    """``parameters`` with Ratio encode bounds filled in, or a :class:`SearchSpaceError`."""
    if not isinstance(space_name, str) or not space_name:
        raise SearchSpaceError(f"search space name {space_name!r} is not a non-empty string")
    by_name: dict[str, Parameter] = {}
    result: list[Parameter] = []
    for param in parameters:
        if not isinstance(param, PARAMETER_TYPES):
            raise SearchSpaceError(f"space {space_name!r}: {param!r} is not a parameter; use "
                                   "Categorical, Integer, Float or Ratio")
        _check_path(space_name, param.name)
        if param.name in by_name:
            raise SearchSpaceError(f"space {space_name!r} declares {param.name!r} twice; give "
                                   "every parameter a unique name")
        if param.condition is not None:
            _check_condition(space_name, param, by_name)
        if isinstance(param, Ratio):
            param = _with_encode_bounds(param, _checked_base(space_name, param, by_name))
        by_name[param.name] = param
        result.append(param)
    _check_collisions(space_name, result, constants)
    return tuple(result)


def _check_path(space_name: str, name: str) -> None:
    if any(not part for part in name.split(PATH_SEPARATOR)):
        raise SearchSpaceError(f"space {space_name!r}: parameter name {name!r} has an empty "
                               f"part; join nested keys with a single {PATH_SEPARATOR!r}")


def _check_condition(space_name: str, param: Parameter, earlier: dict[str, Parameter]) -> None:
    condition: Condition = param.condition
    parent = earlier.get(condition.parent)
    if not isinstance(parent, Categorical):
        raise SearchSpaceError(
            f"space {space_name!r}: {param.name!r} is conditioned on {condition.parent!r}, which "
            "is not a categorical parameter declared before it; declare the categorical first")
    for value in condition.values:
        if choice_index(parent.choices, value) is None:
            raise SearchSpaceError(
                f"space {space_name!r}: {param.name!r} is conditioned on "
                f"{condition.parent}={value!r}, which is not one of {list(parent.choices)!r}")


def _checked_base(space_name: str, ratio: Ratio, earlier: dict[str, Parameter]) -> Integer | Float:
    base = earlier.get(ratio.base)
    if not isinstance(base, (Integer, Float)):
        raise SearchSpaceError(f"space {space_name!r}: Ratio {ratio.name!r} is based on "
                               f"{ratio.base!r}, which is not an Integer or Float parameter "
                               "declared before it; declare the base first")
    if base.low <= 0:
        raise SearchSpaceError(f"space {space_name!r}: Ratio {ratio.name!r} needs a positive "
                               f"base, but {ratio.base!r} starts at {base.low!r}")
    if base.condition is not None and base.condition != ratio.condition:
        raise SearchSpaceError(f"space {space_name!r}: Ratio {ratio.name!r} may be active while "
                               f"its base {ratio.base!r} (only when {base.condition.describe()}) "
                               "is not; give them the same condition")
    return base


def _with_encode_bounds(ratio: Ratio, base: Integer | Float) -> Ratio:
    if ratio.encode_low is not None:
        return ratio
    return dataclasses.replace(ratio, encode_low=ratio.derive(base.low, ratio.factor_low),
                               encode_high=ratio.derive(base.high, ratio.factor_high))


def _check_collisions(space_name: str, parameters: Sequence[Parameter],
                      constants: Mapping[str, Any]) -> None:
    names = [param.name for param in parameters]
    for path in constants:
        _check_path(space_name, path)
        if path in names:
            raise SearchSpaceError(f"space {space_name!r}: {path!r} is both a parameter and a "
                                   "constant; keep one")
    leaves = set(names) | set(constants)
    for param in parameters:
        if isinstance(param, Ratio) and param.factor_key in leaves:
            raise SearchSpaceError(f"space {space_name!r}: {param.factor_key!r} is the Ray Tune "
                                   f"factor key of Ratio {param.name!r}; rename the other key")
    for path in leaves:
        for group in group_of(path):
            if group in leaves:
                raise SearchSpaceError(f"space {space_name!r}: {group!r} is a value and also "
                                       f"holds the nested key {path!r}; rename one of them")
