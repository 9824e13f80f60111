"""A :class:`SearchSpace` built from a user's Ray Tune ``param_space``.

Supported: ``tune.uniform``, ``tune.loguniform``, ``tune.quniform``, ``tune.qloguniform``,
``tune.randint``, ``tune.lograndint`` (upper bound exclusive, as in Ray), ``tune.qrandint`` and
``tune.qlograndint`` (upper bound inclusive for ``q > 1``, exclusive for ``q == 1``, as in Ray),
``tune.choice`` over primitive values, nested dicts (parameter names become "/"-joined paths
such as ``"optimizer/lr"``) and plain constants (kept, never encoded).

Rejected with a :class:`~at2_tune.errors.SearchSpaceError` naming the path: ``tune.sample_from``
and plain functions, ``tune.grid_search``, ``tune.randn``/``tune.qrandn``, ``tune.choice`` over
dicts/lists/objects, and tune domains inside lists.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from search_spaces.errors import SearchSpaceError
from search_spaces._text import PATH_SEPARATOR, value_repr
from search_spaces.params import PRIMITIVE_CHOICE_TYPES, Categorical, Float, Integer, Parameter
from search_spaces.space import SearchSpace

_SUPPORTED = ("tune.uniform, tune.loguniform, tune.quniform, tune.qloguniform, tune.randint, "
              "tune.lograndint, tune.qrandint, tune.qlograndint or tune.choice")


def from_param_space(param_space: Mapping[str, Any], name: str = "custom") -> SearchSpace:
    """The search space that ``param_space`` (a Ray Tune ``param_space`` dict) samples from.

    ``sample``, ``validate`` and ``encode`` of the result work with the nested dict that the
    trainable receives; ``to_param_space()`` gives back an equivalent ``param_space``.

    Raises:
        SearchSpaceError: an unsupported domain or key; the message names its path.
    """
    from ray.tune.search import sample as ray_sample

    if not isinstance(param_space, Mapping):
        raise SearchSpaceError(f"param_space must be a dict, got {type(param_space).__name__}")
    parameters: list[Parameter] = []
    constants: dict[str, Any] = {}
    _collect(param_space, (), parameters, constants, ray_sample)
    return SearchSpace(name, parameters, constants)


def _where(path: tuple[str, ...]) -> str:
    return "param_space" + "".join(f"[{key!r}]" for key in path)


def _collect(mapping: Mapping[str, Any], prefix: tuple[str, ...], parameters: list[Parameter],
             constants: dict[str, Any], ray_sample: Any) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str) or not key or PATH_SEPARATOR in key:
            raise SearchSpaceError(
                f"{_where(prefix)} has the key {key!r}; keys must be non-empty strings without "
                f"{PATH_SEPARATOR!r} (nest dicts instead)")
        path = (*prefix, key)
        if isinstance(value, Mapping) and "grid_search" in value:
            raise SearchSpaceError(
                f"{_where(path)} is tune.grid_search({value_repr(value['grid_search'])}); AT2 "
                "samples configs instead of enumerating a grid: use "
                f"tune.choice({value_repr(value['grid_search'])}) instead")
        if isinstance(value, Mapping) and value:
            _collect(value, path, parameters, constants, ray_sample)
        elif isinstance(value, ray_sample.Domain):
            parameters.append(_parameter_at(path, value, ray_sample))
        elif callable(value) and not isinstance(value, type):
            raise SearchSpaceError(
                f"{_where(path)} is the function {value_repr(value)}; AT2 cannot sample, "
                f"validate or encode what a function returns: use {_SUPPORTED}, or pass fixed "
                "objects to the trainable with tune.with_parameters")
        elif isinstance(value, (list, tuple)) and _holds_domain(value, ray_sample):
            raise SearchSpaceError(
                f"{_where(path)} is a {type(value).__name__} holding tune domains; at2-tune only "
                "samples domains in dicts: use a dict with one key per element")
        else:
            constants[PATH_SEPARATOR.join(path)] = value


def _holds_domain(values: Any, ray_sample: Any) -> bool:
    if isinstance(values, ray_sample.Domain) or callable(values) and not isinstance(values, type):
        return True
    if isinstance(values, Mapping):
        return any(_holds_domain(item, ray_sample) for item in values.values())
    if isinstance(values, (list, tuple)):
        return any(_holds_domain(item, ray_sample) for item in values)
    return False


def _parameter_at(path: tuple[str, ...], domain: Any, ray_sample: Any) -> Parameter:
    """:func:`_parameter`, with errors of the parameter classes prefixed by the path."""
    try:
        return _parameter(path, domain, ray_sample)
    except SearchSpaceError as exc:
        if str(exc).startswith("param_space"):
            raise
        raise SearchSpaceError(f"{_where(path)}: {exc}") from exc


def _parameter(path: tuple[str, ...], domain: Any, ray_sample: Any) -> Parameter:
    name = PATH_SEPARATOR.join(path)
    if isinstance(domain, ray_sample.Function):
        raise SearchSpaceError(
            f"{_where(path)} is tune.sample_from({value_repr(domain.func)}); AT2 cannot sample, "
            f"validate or encode what a function returns: use {_SUPPORTED}; for conditional "
            "parameters build a search_spaces.SearchSpace with Condition")
    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, ray_sample.Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    if isinstance(sampler, ray_sample.Grid):
        raise SearchSpaceError(f"{_where(path)} is a grid-search domain; AT2 samples configs "
                               f"instead of enumerating a grid: use tune.choice([...]) instead")
    if isinstance(domain, ray_sample.Categorical):
        return _categorical(path, domain, ray_sample)
    if isinstance(sampler, ray_sample.Normal):
        raise SearchSpaceError(
            f"{_where(path)} is tune.randn/tune.qrandn (a normal distribution, mean "
            f"{sampler.mean}, sd {sampler.sd}); AT2 needs bounded domains to encode: use "
            "tune.uniform(low, high) or tune.loguniform(low, high) instead")
    log = isinstance(sampler, ray_sample.LogUniform)
    if not (log or isinstance(sampler, ray_sample.Uniform)):
        raise SearchSpaceError(f"{_where(path)} uses the unsupported sampler {sampler}; use "
                               f"{_SUPPORTED}")
    if isinstance(domain, ray_sample.Float):
        return Float(name, domain.lower, domain.upper, log=log, q=q)
    if isinstance(domain, ray_sample.Integer):
        return _integer(path, domain, log, q)
    raise SearchSpaceError(f"{_where(path)} is the unsupported domain {type(domain).__name__}; "
                           f"use {_SUPPORTED}")


def _categorical(path: tuple[str, ...], domain: Any, ray_sample: Any) -> Categorical:
    for choice in domain.categories:
        if not isinstance(choice, PRIMITIVE_CHOICE_TYPES) or isinstance(choice, ray_sample.Domain):
            raise SearchSpaceError(
                f"{_where(path)} is tune.choice over the non-primitive value {value_repr(choice)} "
                f"({type(choice).__name__}); AT2 encodes choices by index and compares them by "
                "value: choose between strings (e.g. tune.choice(['small', 'large'])) and build "
                "the object from the string in your trainable")
    return Categorical(PATH_SEPARATOR.join(path), tuple(domain.categories))


def _integer(path: tuple[str, ...], domain: Any, log: bool, q: Any) -> Integer:
    name = PATH_SEPARATOR.join(path)
    lower, upper = _as_int(path, "lower", domain.lower), _as_int(path, "upper", domain.upper)
    if q is None or q == 1:
        low, high, step = lower, upper - 1, 1  # Ray excludes the upper bound here
    else:
        step = _as_int(path, "q", q)
        low, high = math.ceil(lower / step) * step, math.floor(upper / step) * step
    if low > high:
        raise SearchSpaceError(f"{_where(path)} has no integer to sample between {lower} and "
                               f"{upper} (q={q}); widen the bounds")
    return Integer(name, low, high, log=log, q=step)


def _as_int(path: tuple[str, ...], label: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)) or not float(value).is_integer():
        raise SearchSpaceError(f"{_where(path)} has {label}={value_repr(value)}, which is not an "
                               "integer; integer domains need integer bounds")
    return int(value)
