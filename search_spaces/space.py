"""The :class:`SearchSpace`: an ordered list of (conditional) parameters plus fixed constants.

A *canonical config* holds exactly the active parameters (and the constants) as plain Python
values; for a nested space (names like ``"optimizer/lr"``) it is the nested dict a trainable
receives. :meth:`SearchSpace.validate` turns any acceptable config into the canonical one or
raises a :class:`~search_spaces.validation.InvalidConfigError` that says what to change.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from search_spaces.errors import SearchSpaceError
from search_spaces._text import (PATH_SEPARATOR, config_ref, did_you_mean, number,
                                 table, value_repr)
from search_spaces.encoding import NumericScaling
from search_spaces.params import (NUMERIC_KINDS, Categorical, Integer, Parameter, Ratio,
                                  choice_index, same_choice)
from search_spaces.paths import flatten, group_of, unflatten
from search_spaces.ray_export import ray_domain
from search_spaces.serialization import exact_key, space_from_json, space_to_json
from search_spaces.structure import checked_parameters
from search_spaces.validation import InvalidConfigError, allowed_text, check_value


class SearchSpace:
    """An ordered, immutable list of parameters; see the module docstring.

    Args:
        name: short identifier used in messages, e.g. ``"hyperrec"``.
        parameters: the parameters; a condition's parent and a Ratio's base come first.
        constants: fixed values (flat ``"a/b"`` paths or nested dicts) that every config holds
            unchanged; they are sampled as-is and never encoded.
    """

    def __init__(self, name: str, parameters: Sequence[Parameter],
                 constants: Mapping[str, Any] | None = None) -> None:
        self._constants = flatten(constants) if constants else {}
        self._parameters = checked_parameters(name, list(parameters), self._constants)
        self._name = name
        self._by_name = {param.name: param for param in self._parameters}
        self._numeric = tuple(p for p in self._parameters if isinstance(p, NUMERIC_KINDS))
        self._categorical = tuple(p for p in self._parameters if isinstance(p, Categorical))
        self._scaling = NumericScaling.of(self._numeric)

    # ----------------------------------------------------------------- description
    @property
    def name(self) -> str:
        """Identifier of the space (``"hyperrec"``)."""
        return self._name

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """All parameters in declaration order."""
        return self._parameters

    @property
    def constants(self) -> dict[str, Any]:
        """The fixed values, keyed by flat path."""
        return dict(self._constants)

    @property
    def numeric_names(self) -> tuple[str, ...]:
        """Names of the non-categorical parameters: the columns of the numeric encoding."""
        return tuple(param.name for param in self._numeric)

    @property
    def categorical_names(self) -> tuple[str, ...]:
        """Names of the categorical parameters: the columns of the categorical encoding."""
        return tuple(param.name for param in self._categorical)

    @property
    def categorical_choices(self) -> tuple[tuple[Any, ...], ...]:
        """The choices of each categorical parameter, aligned with :attr:`categorical_names`."""
        return tuple(param.choices for param in self._categorical)

    @property
    def n_numeric(self) -> int:
        """Width of the numeric encoding."""
        return len(self._numeric)

    @property
    def n_categorical(self) -> int:
        """Width of the categorical encoding."""
        return len(self._categorical)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name`` (a :class:`SearchSpaceError` if there is none)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise SearchSpaceError(f"the {self._name!r} space has no parameter {name!r}"
                                   f"{did_you_mean(name, self._by_name)}") from None

    def __len__(self) -> int:
        return len(self._parameters)

    def __eq__(self, other: object) -> bool:
        """Same name, parameters (in order) and constants; ``True``, ``1`` and ``1.0`` differ, and
        so do lists and tuples."""
        if not isinstance(other, SearchSpace):
            return NotImplemented
        try:
            return (self._name == other._name
                    and exact_key(self._parameters) == exact_key(other._parameters)
                    and exact_key(self._constants) == exact_key(other._constants))
        except (TypeError, ValueError):  # constants that cannot be compared (e.g. arrays)
            return False

    def __hash__(self) -> int:
        return hash((self._name, self._parameters))

    def __repr__(self) -> str:
        return (f"SearchSpace({self._name!r}: {self.n_numeric} numeric, "
                f"{self.n_categorical} categorical, {len(self._constants)} constant)")

    def describe(self) -> str:
        """A human-readable table of the parameters (name, kind, domain, scale, condition)."""
        rows = []
        for param in self._parameters:
            rows.append((param.name, param.kind, param.domain_text(), _scale_text(param),
                         param.condition.describe() if param.condition else "always"))
        for path, value in self._constants.items():
            rows.append((path, "constant", value_repr(value), "-", "always"))
        title = (f"search space {self._name!r}: {len(self._parameters)} parameters "
                 f"({self.n_numeric} numeric, {self.n_categorical} categorical)"
                 + (f", {len(self._constants)} constants" if self._constants else ""))
        header = ("name", "kind", "range / choices", "scale", "active when")
        return title + "\n" + table(header, rows)

    # ----------------------------------------------------------------- serialization
    def to_json(self) -> dict[str, Any]:
        """A versioned dict of JSON values only (``{"format": 1, "name", "parameters",
        "constants"}``) that :meth:`from_json` turns back into an equal space; see
        :mod:`search_spaces.serialization`.

        Raises:
            SearchSpaceError: a constant that JSON cannot hold exactly (an object, an array);
                the message names its path.
        """
        return space_to_json(self._name, self._parameters, self._constants)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        """The space that :meth:`to_json` wrote ``data`` for (also after ``json.dumps``/``loads``).

        Raises:
            SearchSpaceError: an unsupported ``"format"``, an unknown parameter ``"kind"`` or
                otherwise malformed data; the message names the value and the fix.
        """
        return cls(*space_from_json(data))

    # ----------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A config with the active parameters drawn from their distributions (plus constants).

        The draws only depend on ``rng``'s state: the same state gives the same config.
        """
        values: dict[str, Any] = {}
        for param in self._parameters:
            if not self._is_active(param, values):
                continue
            if isinstance(param, Ratio):
                values[param.name] = param.sample(rng, values[param.base])
            else:
                values[param.name] = param.sample(rng)
        return self._assemble(values)

    def sample_many(self, rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
        """``count`` consecutive :meth:`sample` draws."""
        return [self.sample(rng) for _ in range(count)]

    def finite_configs(self, limit: int) -> list[dict[str, Any]] | None:
        """Every config of the space, in declaration order, when the space is finite (only
        :class:`Categorical` and :class:`Integer` parameters, conditions respected) and holds
        at most ``limit`` configs; else ``None``. A space of choices only is enumerated instead
        of sampled, so no config repeats and none is missed."""
        if any(not isinstance(p, (Categorical, Integer)) for p in self._parameters):
            return None
        partial: list[dict[str, Any]] = [{}]
        for param in self._parameters:
            grown: list[dict[str, Any]] = []
            for values in partial:
                if not self._is_active(param, values):
                    grown.append(values)
                    continue
                domain = param.choices if isinstance(param, Categorical) \
                    else range(param.low, param.high + 1, param.q)
                if len(grown) + len(domain) > limit:
                    return None
                grown.extend({**values, param.name: value} for value in domain)
            partial = grown
        return [self._assemble(values) for values in partial]

    # ----------------------------------------------------------------- validation
    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical form of ``config`` (plain Python values, constants filled in).

        Raises:
            InvalidConfigError: an unknown key, a missing active parameter, a parameter of an
                inactive branch, a value of the wrong type or outside its domain, or a
                constant with another value. The message names the key, the value and the fix.
        """
        return self._assemble(self._checked_values(config))

    def _checked_values(self, config: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(config, Mapping):
            raise InvalidConfigError(f"a config of the {self._name!r} space must be a dict, "
                                     f"got {type(config).__name__} {value_repr(config)}")
        flat = flatten(config)
        self._reject_unknown_keys(flat)
        self._reject_changed_constants(flat)
        checked: dict[str, Any] = {}
        for param in self._parameters:
            active, present = self._is_active(param, checked), param.name in flat
            if active and not present:
                raise InvalidConfigError(self._missing_message(param, checked), key=param.name)
            if present and not active:
                raise InvalidConfigError(self._inactive_message(param, checked), key=param.name)
            if active:
                base = checked.get(param.base) if isinstance(param, Ratio) else None
                checked[param.name] = check_value(param, flat[param.name], self._name, base)
        return checked

    def _reject_unknown_keys(self, flat: Mapping[str, Any]) -> None:
        known = set(self._by_name) | set(self._constants)
        unknown = [path for path in flat if path not in known]
        if not unknown:
            return
        path = unknown[0]
        more = f" (and the unknown keys {unknown[1:]!r})" if unknown[1:] else ""
        holder = next((group for group in group_of(path) if group in known), None)
        if holder is not None:
            raise InvalidConfigError(
                f"{config_ref(holder)} is a dict, but it is a single value in the {self._name!r} "
                f"space; set it to {self._allowed(holder)}", key=holder)
        members = [name for name in known if name.startswith(path + PATH_SEPARATOR)]
        if members:
            inner = sorted(name[len(path) + 1:] for name in members)
            raise InvalidConfigError(
                f"{config_ref(path)}={value_repr(flat[path])} should be a dict holding "
                f"{inner!r} in the {self._name!r} space; nest those keys under {path!r}",
                key=path)
        ratio = next((p for p in self._parameters
                      if isinstance(p, Ratio) and p.factor_key == path), None)
        if ratio is not None:
            raise InvalidConfigError(
                f"config has {path!r}, the Ray Tune sampling key of {ratio.name!r}; convert "
                "configs sampled from to_param_space() with from_ray_config()", key=path)
        hint = did_you_mean(path, known)
        raise InvalidConfigError(
            f"config has the unknown key {path!r}{hint}; the {self._name!r} space has the keys "
            f"{sorted(known)!r}; remove or rename {path!r}{more}", key=path)

    def _reject_changed_constants(self, flat: Mapping[str, Any]) -> None:
        for path, constant in self._constants.items():
            if path in flat and not _equal_constants(flat[path], constant):
                raise InvalidConfigError(
                    f"{config_ref(path)}={value_repr(flat[path])} differs from the constant "
                    f"{value_repr(constant)} fixed by the {self._name!r} space; remove it or "
                    f"set it to {value_repr(constant)}", key=path)

    def _allowed(self, name: str) -> str:
        param = self._by_name.get(name)
        return allowed_text(param) if param is not None else value_repr(self._constants[name])

    def _missing_message(self, param: Parameter, checked: Mapping[str, Any]) -> str:
        base_value = checked.get(param.base) if isinstance(param, Ratio) else None
        add = f"add {allowed_text(param, base_value)}"
        if param.condition is None:
            return (f"config is missing {param.name!r} ({param.domain_text()}), which the "
                    f"{self._name!r} space always requires; {add}")
        return (f"config is missing {param.name!r}: {param.condition.parent}="
                f"{value_repr(checked[param.condition.parent])} requires {param.name!r} "
                f"({param.domain_text()}); {add}")

    def _inactive_message(self, param: Parameter, checked: Mapping[str, Any]) -> str:
        parent = param.condition.parent
        if parent in checked:
            state = f"the config has {parent}={value_repr(checked[parent])}"
        else:
            state = f"{parent!r} is itself inactive in this config"
        return (f"{param.name!r} belongs to {param.condition.describe()} but {state}; "
                f"remove it")

    # ----------------------------------------------------------------- encoding
    def encode(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric, categorical)`` of one config: ``float64 (n_numeric,)`` in ``[0, 1]``
        (inactive dims exactly 0) and ``int64 (n_categorical,)`` choice indices (an inactive
        categorical encodes as 0). The config is validated first.
        """
        numeric, categorical = self.encode_many([config])
        return numeric[0], categorical[0]

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode` of each config, stacked: ``(N, n_numeric)`` and ``(N, n_categorical)``."""
        configs = list(configs)
        raw = np.full((len(configs), self.n_numeric), np.nan, dtype=np.float64)
        categorical = np.zeros((len(configs), self.n_categorical), dtype=np.int64)
        for row, config in enumerate(configs):
            values = self._checked_values(config)
            raw[row] = [values.get(param.name, math.nan) for param in self._numeric]
            categorical[row] = [choice_index(param.choices, values[param.name])
                                if param.name in values else 0 for param in self._categorical]
        return self._scaling.scale(raw), categorical

    # ----------------------------------------------------------------- Ray Tune
    def to_param_space(self) -> dict[str, Any]:
        """A Ray Tune ``param_space`` with every parameter (all branches) and the constants.

        Conditional parameters are sampled unconditionally; a :class:`Ratio` is sampled as its
        factor under ``"<name>_factor"``. Pass what Ray samples through :meth:`from_ray_config`.
        """
        flat: dict[str, Any] = {}
        for param in self._parameters:
            key = param.factor_key if isinstance(param, Ratio) else param.name
            flat[key] = ray_domain(param)
        flat.update(self._constants)
        return unflatten(flat)

    def from_ray_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical config of a (flat or nested) config sampled from :meth:`to_param_space`.

        Drops the parameters of inactive branches, turns ``"<name>_factor"`` keys into the
        derived Ratio values, then :meth:`validate`\\ s the result.
        """
        if not isinstance(config, Mapping):
            raise InvalidConfigError(f"a Ray Tune config must be a dict, got "
                                     f"{type(config).__name__}")
        values = flatten(config)
        activity: dict[str, bool | None] = {}
        for param in self._parameters:
            activity[param.name] = self._raw_activity(param, values, activity)
        for param in self._parameters:
            if isinstance(param, Ratio) and param.factor_key in values:
                self._derive_from_factor(param, values, activity[param.name])
        for param in self._parameters:
            if activity[param.name] is False:
                values.pop(param.name, None)
        return self.validate(unflatten(values))

    def to_ray_sample(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A canonical configuration as a full sample of :meth:`to_param_space` (flat; a Ratio
        as its factor), e.g. to warm-start a Ray searcher, which wants every parameter: those
        of inactive branches get the middle of their domain (they do not change the
        configuration, see :meth:`from_ray_config`)."""
        config = self.validate(config)
        values = flatten(config)
        point: dict[str, Any] = {}
        for param in self._parameters:
            if isinstance(param, Ratio):
                if param.name in values:
                    factor = values[param.name] / values[param.base]
                else:
                    factor = (param.factor_low + param.factor_high) / 2
                point[param.factor_key] = min(max(factor, param.factor_low), param.factor_high)
            elif param.name in values:
                point[param.name] = values[param.name]
            elif isinstance(param, Categorical):
                point[param.name] = param.choices[0]
            else:
                middle = math.sqrt(param.low * param.high) if param.log else \
                    (param.low + param.high) / 2
                point[param.name] = round(middle) if isinstance(param, Integer) else float(middle)
        point.update(flatten(self._constants))
        return unflatten(point)

    def _derive_from_factor(self, ratio: Ratio, values: dict[str, Any],
                            active: bool | None) -> None:
        factor = values.pop(ratio.factor_key)
        if active is False:
            return
        if ratio.name in values:
            raise InvalidConfigError(f"config has both {ratio.name!r} and {ratio.factor_key!r}; "
                                     "keep only one of them", key=ratio.name)
        if (isinstance(factor, bool) or not isinstance(factor, (int, float, np.number))
                or not ratio.factor_low <= factor <= ratio.factor_high):
            raise InvalidConfigError(
                f"{config_ref(ratio.factor_key)}={value_repr(factor)} is outside the factor "
                f"U({number(ratio.factor_low)}, {number(ratio.factor_high)}) of "
                f"{ratio.name} = {ratio.domain_text()} in the {self._name!r} space; use a value "
                f"in [{number(ratio.factor_low)}, {number(ratio.factor_high)}]",
                key=ratio.factor_key)
        base = values.get(ratio.base)
        if isinstance(base, (int, float, np.number)) and not isinstance(base, bool):
            values[ratio.name] = ratio.derive(base, factor)

    # ----------------------------------------------------------------- helpers
    def _is_active(self, param: Parameter, values: Mapping[str, Any]) -> bool:
        """Activity given the values of the active parameters drawn or checked so far."""
        condition = param.condition
        return condition is None or (condition.parent in values
                                     and condition.holds(values[condition.parent]))

    def _raw_activity(self, param: Parameter, values: Mapping[str, Any],
                      activity: Mapping[str, bool | None]) -> bool | None:
        """Activity in an unchecked config; ``None`` when a parent's value is missing."""
        condition = param.condition
        if condition is None:
            return True
        parent_active = activity[condition.parent]
        if parent_active is False:
            return False
        if condition.parent not in values:
            return None
        try:
            return condition.holds(values[condition.parent])
        except TypeError:
            return None

    def _assemble(self, values: Mapping[str, Any]) -> dict[str, Any]:
        flat = dict(values)
        flat.update(self._constants)
        return unflatten(flat)


def _scale_text(param: Parameter) -> str:
    if isinstance(param, Categorical):
        return "-"
    if isinstance(param, Ratio):
        return f"linear on [{number(param.encode_low)}, {number(param.encode_high)}]"
    return "log" if param.log else "linear"


def _equal_constants(value: Any, constant: Any) -> bool:
    """``==`` that keeps bools apart from numbers and treats incomparable values as different."""
    return same_choice(value, constant)
