"""A versioned, JSON-safe form of a :class:`~search_spaces.space.SearchSpace`.

``SearchSpace.to_json()`` gives a dict of str, int, float, bool, None, lists and dicts only::

    {"format": 1, "name": "user",
     "parameters": [{"kind": "float", "name": "lr", "low": 1e-05, "high": 0.1, "log": true,
                     "q": null, "condition": null}, ...],
     "constants": {"optimizer/name": "sgd", "tags": ["a", "b"]}}

Every parameter lists all fields of its dataclass plus a ``"kind"`` tag; a condition is
``{"parent": ..., "values": [...]}``. JSON keeps ``True`` apart from ``1`` and ``1.0`` apart
from ``1``; what it cannot hold is tagged with a one-key object, so every value comes back as
exactly what it was: ``{"tuple": [...]}``, ``{"dict": {...}}`` (every dict in a value is tagged)
and ``{"float": "nan" | "inf" | "-inf"}``. Numpy scalars are stored as the Python value they
equal. ``SearchSpace.from_json`` reads the format back into an equal space.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from search_spaces.errors import SearchSpaceError
from search_spaces._text import value_repr
from search_spaces.params import Categorical, Condition, Float, Integer, Parameter, Ratio

FORMAT_VERSION = 1
"""The version written by :func:`space_to_json` and the only one :func:`space_from_json` reads."""

PARAMETER_KINDS: dict[str, type] = {"categorical": Categorical, "integer": Integer,
                                    "float": Float, "ratio": Ratio}
"""The ``"kind"`` tag of each parameter class."""

_PLAIN_TYPES = (str, int, float, bool, type(None))
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_VALUE_TAGS = ("tuple", "dict", "float")


def space_to_json(name: str, parameters: tuple[Parameter, ...],
                  constants: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a space (see the module docstring); ``SearchSpace.to_json`` calls it.

    Raises:
        SearchSpaceError: a constant or choice JSON cannot hold (an object, a numpy array, an
            enum member, a dict with non-string keys); the message names its path.
    """
    return {
        "format": FORMAT_VERSION,
        "name": name,
        "parameters": [_parameter_to_json(name, param) for param in parameters],
        "constants": {path: encode_value(value, f"space {name!r}: the constant {path!r}")
                      for path, value in constants.items()},
    }


def space_from_json(data: Any) -> tuple[str, list[Parameter], dict[str, Any]]:
    """``(name, parameters, constants)`` of a dict written by :func:`space_to_json`.

    Raises:
        SearchSpaceError: not a dict, an unsupported ``"format"``, an unknown ``"kind"``, a
            missing or unknown field, or an invalid parameter; the message names the value.
    """
    if not isinstance(data, Mapping):
        raise SearchSpaceError(f"a saved search space must be a dict (from SearchSpace.to_json()), "
                               f"got {type(data).__name__} {value_repr(data)}")
    if "format" not in data:
        raise SearchSpaceError("saved search space has no 'format' field; it was not written by "
                               "SearchSpace.to_json(): save the space again with to_json()")
    version = data["format"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise SearchSpaceError(
            f"saved search space has format {value_repr(version)}, but this version of at2-tune "
            f"reads format {FORMAT_VERSION} only; save it again with SearchSpace.to_json() of "
            "this version (or upgrade at2-tune to read a newer format)")
    _check_keys("saved search space", data, required=("format", "name", "parameters"),
                optional=("constants",))
    name, parameters, constants = data["name"], data["parameters"], data.get("constants") or {}
    if not isinstance(parameters, list):
        raise SearchSpaceError(f"saved search space {name!r}: 'parameters' must be a list, got "
                               f"{type(parameters).__name__}")
    if not isinstance(constants, Mapping):
        raise SearchSpaceError(f"saved search space {name!r}: 'constants' must be a dict of "
                               f"path -> value, got {type(constants).__name__}")
    where = f"saved search space {name!r}"
    return (name,
            [_parameter_from_json(where, index, item) for index, item in enumerate(parameters)],
            {path: decode_value(value, f"{where}: the constant {path!r}")
             for path, value in constants.items()})


def encode_value(value: Any, where: str) -> Any:
    """``value`` as JSON data that :func:`decode_value` turns back into exactly ``value``."""
    if isinstance(value, np.generic) and not isinstance(value, (np.void, np.object_)):
        value = value.item()
    if type(value) in _PLAIN_TYPES:
        if isinstance(value, float) and not math.isfinite(value):
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        return value
    if type(value) is list:
        return [encode_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if type(value) is tuple:
        return {"tuple": [encode_value(item, f"{where}[{index}]")
                          for index, item in enumerate(value)]}
    if type(value) is dict and all(isinstance(key, str) for key in value):
        return {"dict": {key: encode_value(item, f"{where}[{key!r}]")
                         for key, item in value.items()}}
    raise SearchSpaceError(
        f"{where} is {value_repr(value)} of type {type(value).__name__}, which JSON cannot hold "
        "exactly; SearchSpace.to_json() keeps str, int, float, bool, None and lists, tuples and "
        "str-keyed dicts of them: use such a value (e.g. a string the trainable maps to the "
        "object)")


def decode_value(data: Any, where: str) -> Any:
    """The value that :func:`encode_value` turned into ``data``."""
    if isinstance(data, list):
        return [decode_value(item, f"{where}[{index}]") for index, item in enumerate(data)]
    if not isinstance(data, Mapping):
        return data
    tag = next(iter(data), None)
    if len(data) != 1 or tag not in _VALUE_TAGS:
        raise SearchSpaceError(f"{where} is the object {value_repr(data)}; a saved value is JSON "
                               f"data or an object with one of the keys {list(_VALUE_TAGS)!r}; "
                               "save the space again with SearchSpace.to_json()")
    inner = data[tag]
    if tag == "tuple" and isinstance(inner, list):
        return tuple(decode_value(item, f"{where}[{index}]") for index, item in enumerate(inner))
    if tag == "dict" and isinstance(inner, Mapping):
        return {key: decode_value(item, f"{where}[{key!r}]") for key, item in inner.items()}
    if tag == "float" and inner in _NON_FINITE:
        return _NON_FINITE[inner]
    raise SearchSpaceError(f"{where} is {value_repr(data)}, which is not a valid {tag!r} tag; "
                           "save the space again with SearchSpace.to_json()")


def exact_key(value: Any) -> Any:
    """A comparable form of ``value`` that keeps ``True``, ``1`` and ``1.0`` and lists and tuples
    apart (numpy scalars count as the Python value they equal); used by ``SearchSpace.__eq__``.
    """
    if isinstance(value, np.generic) and not isinstance(value, (np.void, np.object_)):
        value = value.item()
    if isinstance(value, (Condition, *PARAMETER_KINDS.values())):
        return (type(value), tuple((field.name, exact_key(getattr(value, field.name)))
                                   for field in dataclasses.fields(value)))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(exact_key(item) for item in value))
    if isinstance(value, dict):  # order-insensitive, like dict equality
        return (dict, {key: exact_key(item) for key, item in value.items()})
    if isinstance(value, float):
        return (float, repr(value))  # NaN equals NaN here
    return (type(value), value)


def _parameter_to_json(space_name: str, param: Parameter) -> dict[str, Any]:
    where = f"space {space_name!r}: parameter {param.name!r}"
    data: dict[str, Any] = {"kind": param.kind}
    for field in dataclasses.fields(param):
        value = getattr(param, field.name)
        if field.name == "condition":
            data["condition"] = None if value is None else {
                "parent": value.parent,
                "values": [encode_value(item, f"{where}: condition value")
                           for item in value.values]}
        elif isinstance(value, tuple):  # Categorical.choices: the dataclass makes it a tuple
            data[field.name] = [encode_value(item, f"{where}: choice") for item in value]
        else:
            data[field.name] = encode_value(value, f"{where}: {field.name}")
    return data


def _parameter_from_json(where: str, index: int, data: Any) -> Parameter:
    if not isinstance(data, Mapping):
        raise SearchSpaceError(f"{where}: parameter #{index} must be a dict, got "
                               f"{type(data).__name__} {value_repr(data)}")
    label = f"{where}: parameter #{index} ({value_repr(data.get('name'))})"
    kind = data.get("kind")
    cls = PARAMETER_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SearchSpaceError(f"{label} has the unknown kind {value_repr(kind)}; use one of "
                               f"{list(PARAMETER_KINDS)!r} (or upgrade at2-tune if the space was "
                               "saved by a newer version)")
    fields = dataclasses.fields(cls)
    required = tuple(field.name for field in fields if field.default is dataclasses.MISSING)
    optional = tuple(field.name for field in fields if field.name not in required)
    _check_keys(f"{label} of kind {kind!r}", data, required=("kind", *required),
                optional=optional)
    kwargs = {key: decode_value(value, f"{label}: {key}")
              for key, value in data.items() if key not in ("kind", "condition")}
    try:
        condition = data.get("condition")
        if condition is not None:
            _check_keys(f"{label}: condition", condition, required=("parent", "values"))
            values = decode_value(condition["values"], f"{label}: condition values")
            kwargs["condition"] = Condition(condition["parent"], values)
        return cls(**kwargs)
    except TypeError as exc:  # e.g. a string where a Ratio needs a number
        raise SearchSpaceError(f"{label} has a field of the wrong type ({exc}); save the space "
                               "again with SearchSpace.to_json()") from exc


def _check_keys(label: str, data: Any, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> None:
    if not isinstance(data, Mapping):
        raise SearchSpaceError(f"{label} must be a dict, got {type(data).__name__} "
                               f"{value_repr(data)}")
    missing = [key for key in required if key not in data]
    unknown = [key for key in data if key not in required and key not in optional]
    if missing:
        raise SearchSpaceError(f"{label} lacks the keys {missing!r}; expected the keys "
                               f"{[*required, *optional]!r}")
    if unknown:
        raise SearchSpaceError(f"{label} has the unknown keys {unknown!r}; expected the keys "
                               f"{[*required, *optional]!r}; remove them")
