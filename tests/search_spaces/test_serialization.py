"""Tests of the JSON form of search spaces (``SearchSpace.to_json`` / ``from_json``)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from ray import tune

from search_spaces import SearchSpaceError
from search_spaces import (HYPERREC_SPACE, LCBENCH_SPACE, Categorical, Condition, Float, Integer,
                           Ratio, SearchSpace, from_param_space)
from search_spaces.paths import flatten

MIXED_CHOICES = (True, 1, 2.5, "1", None, False, 0)


def every_domain_param_space() -> dict:
    """A nested Ray Tune param_space with every supported domain and some constants."""
    return {
        "optimizer": {"lr": tune.loguniform(1e-5, 1e-1), "momentum": tune.uniform(0.0, 0.99),
                      "name": "sgd"},
        "model": {"layers": tune.randint(1, 5), "width": tune.lograndint(16, 513),
                  "units": tune.qrandint(8, 64, 8), "dropout": tune.quniform(0.0, 0.5, 0.1),
                  "head": {"size": tune.qloguniform(0.5, 64.0, 0.5),
                           "groups": tune.qlograndint(2, 16, 2)}},
        "flag": tune.choice(list(MIXED_CHOICES)),
        "epochs": 10,
        "tags": ["a", ("b", 2)],
        "shape": (3, 4),
        "extra": {},
        "limits": {"floor": -math.inf, "scale": 1.0},
    }


GENERIC_SPACE = from_param_space(every_domain_param_space(), name="every_domain")

CONDITIONAL_SPACE = SearchSpace("conditional", [
    Categorical("switch", (True, 1, "on", None)),
    Float("lr", 1e-4, 1e-1, log=True),
    Integer("steps", 8, 64, q=8, condition=Condition("switch", (True, None))),
    Ratio("max_lr", "lr", 1, 2.5, cap=math.inf, condition=Condition("switch", 1)),
    Ratio("min_lr", "lr", 0.5, 0.9),
])

SPACES = [HYPERREC_SPACE, LCBENCH_SPACE, GENERIC_SPACE, CONDITIONAL_SPACE]
IDS = [space.name for space in SPACES]


def through_json(space: SearchSpace) -> SearchSpace:
    """``space`` saved as JSON text (strict: no NaN/Infinity literals) and read back."""
    return SearchSpace.from_json(json.loads(json.dumps(space.to_json(), allow_nan=False)))


def exactly(value):
    """``value`` with the type of every element attached, so ``True`` differs from ``1``."""
    if isinstance(value, dict):
        return {key: exactly(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value), [exactly(item) for item in value]
    return type(value), repr(value)


def json_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and json_only(item) for key, item in value.items())
    if isinstance(value, list):
        return all(json_only(item) for item in value)
    return type(value) in (str, int, float, bool, type(None)) and (
        not isinstance(value, float) or math.isfinite(value))


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_round_trip_gives_an_equal_space(space):
    data = space.to_json()
    assert data["format"] == 1 and data["name"] == space.name
    assert json_only(data)
    rebuilt = through_json(space)
    assert rebuilt == space and hash(rebuilt) == hash(space)
    assert SearchSpace.from_json(space.to_json()) == space  # without JSON text in between
    assert rebuilt.to_json() == data


@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_round_trip_keeps_parameters_and_constants_exactly(space):
    rebuilt = through_json(space)
    assert [type(param) for param in rebuilt.parameters] == [type(p) for p in space.parameters]
    for param, original in zip(rebuilt.parameters, space.parameters):
        assert exactly(vars(param)) == exactly(vars(original))
        assert exactly(vars(param.condition) if param.condition else None) == exactly(
            vars(original.condition) if original.condition else None)
    assert exactly(rebuilt.constants) == exactly(space.constants)
    assert rebuilt.describe() == space.describe()


def test_generic_space_covers_every_domain():
    kinds = {(type(p).__name__, getattr(p, "log", None), getattr(p, "q", None) not in (None, 1))
             for p in GENERIC_SPACE.parameters}
    assert kinds == {("Float", False, False), ("Float", True, False), ("Float", False, True),
                     ("Float", True, True), ("Integer", False, False), ("Integer", True, False),
                     ("Integer", False, True), ("Integer", True, True),
                     ("Categorical", None, False)}
    rebuilt = through_json(GENERIC_SPACE)
    assert exactly(rebuilt.parameter("flag").choices) == exactly(MIXED_CHOICES)
    constants = rebuilt.constants
    assert exactly(constants["tags"]) == exactly(["a", ("b", 2)])
    assert exactly(constants["shape"]) == exactly((3, 4))
    assert constants["extra"] == {} and constants["limits/floor"] == -math.inf


def test_non_finite_values_are_tagged():
    data = CONDITIONAL_SPACE.to_json()
    ratio = next(item for item in data["parameters"] if item["name"] == "max_lr")
    assert ratio["kind"] == "ratio" and ratio["cap"] == {"float": "inf"}
    assert ratio["factor_low"] == 1 and type(ratio["factor_low"]) is int
    assert ratio["condition"] == {"parent": "switch", "values": [1]}
    space = SearchSpace("nan", [Float("x", 0.0, 1.0)], {"missing": math.nan})
    assert space.to_json()["constants"] == {"missing": {"float": "nan"}}
    assert math.isnan(through_json(space).constants["missing"]) and through_json(space) == space


# ------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_rebuilt_space_samples_encodes_and_validates_identically(space):
    rebuilt = through_json(space)
    for seed in range(40):
        sample = space.sample(np.random.default_rng(seed))
        again = rebuilt.sample(np.random.default_rng(seed))
        assert exactly(again) == exactly(sample)
        assert exactly(rebuilt.validate(sample)) == exactly(space.validate(sample))
        for mine, theirs in zip(rebuilt.encode(sample), space.encode(sample)):
            assert mine.dtype == theirs.dtype
            np.testing.assert_array_equal(mine, theirs)
    many = space.sample_many(np.random.default_rng(7), 25)
    for mine, theirs in zip(rebuilt.encode_many(many), space.encode_many(many)):
        np.testing.assert_array_equal(mine, theirs)
    assert rebuilt.numeric_names == space.numeric_names
    assert exactly(rebuilt.categorical_choices) == exactly(space.categorical_choices)


@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_rebuilt_space_rejects_the_same_configs(space):
    rebuilt = through_json(space)
    sample = flatten(space.sample(np.random.default_rng(3)))
    name = space.parameters[0].name
    bad_configs = [{**sample, name: "not a value"}, {**sample, "unknown_key": 1},
                   {key: value for key, value in sample.items() if key != name}]
    for config in bad_configs:
        messages = []
        for candidate in (space, rebuilt):
            with pytest.raises(SearchSpaceError) as info:
                candidate.validate(config)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def test_bool_choice_is_not_confused_with_int():
    rebuilt = through_json(GENERIC_SPACE)
    for value in MIXED_CHOICES:
        config = {**GENERIC_SPACE.sample(np.random.default_rng(0)), "flag": value}
        assert exactly(rebuilt.validate(config)["flag"]) == exactly(value)
        assert rebuilt.encode(config)[1][0] == GENERIC_SPACE.encode(config)[1][0]
    seen = {exactly(rebuilt.sample(np.random.default_rng(seed))["flag"]) for seed in range(200)}
    assert seen == {exactly(value) for value in MIXED_CHOICES}


# ------------------------------------------------------------------ equality
def test_equality_keeps_bool_int_and_list_tuple_apart():
    base = SearchSpace("s", [Categorical("c", (1, "a"))], {"k": [1, 2]})
    assert base == SearchSpace("s", [Categorical("c", (1, "a"))], {"k": [1, 2]})
    assert base != SearchSpace("s", [Categorical("c", (True, "a"))], {"k": [1, 2]})
    assert base != SearchSpace("s", [Categorical("c", (1.0, "a"))], {"k": [1, 2]})
    assert base != SearchSpace("s", [Categorical("c", (1, "a"))], {"k": (1, 2)})
    assert base != SearchSpace("t", [Categorical("c", (1, "a"))], {"k": [1, 2]})
    assert base != SearchSpace("s", [Categorical("c", ("a", 1))], {"k": [1, 2]})
    assert base != "s"


def test_numpy_scalars_are_saved_as_the_python_values_they_equal():
    space = SearchSpace("np", [Categorical("c", (np.float64(0.5), "a"))],
                        {"n": np.int64(3), "flag": np.bool_(True)})
    rebuilt = through_json(space)
    assert rebuilt == space
    assert exactly(rebuilt.constants) == exactly({"n": 3, "flag": True})


# ------------------------------------------------------------------ bad inputs
def _saved() -> dict:
    return copy.deepcopy(HYPERREC_SPACE.to_json())


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(format=2), r"format 2.*reads format 1"),
    (lambda d: d.update(format="1"), r"format '1'"),
    (lambda d: d.update(format=True), r"format True"),
    (lambda d: d.pop("format"), r"no 'format' field"),
    (lambda d: d["parameters"][0].update(kind="normal"), r"unknown kind 'normal'.*'categorical'"),
    (lambda d: d["parameters"][0].pop("kind"), r"unknown kind None"),
    (lambda d: d["parameters"][0].pop("low"), r"lacks the keys \['low'\]"),
    (lambda d: d["parameters"][0].update(step=2), r"unknown keys \['step'\]"),
    (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda d: d.update(parameters={}), r"'parameters' must be a list"),
    (lambda d: d["parameters"].append("lr"), r"parameter #18 must be a dict"),
    (lambda d: d["parameters"][0].update(low=32.5), r"low=32.5 is not an int"),
    (lambda d: d["parameters"][13].update(factor_low="1.1"), r"'max_lr'.*wrong type"),
    (lambda d: d["parameters"][6].update(condition={"parent": "optimizer"}), r"lacks.*'values'"),
    (lambda d: d["parameters"][6]["condition"].update(values=["SGD"]), r"optimizer='SGD'"),
    (lambda d: d["parameters"][1].update(choices=[{"set": [1]}]), r"one of the keys"),
    (lambda d: d["parameters"][1].update(choices=[{"float": "huge"}]), r"not a valid 'float'"),
    (lambda d: d.update(constants=[1]), r"'constants' must be a dict"),
])
def test_bad_saved_spaces_are_rejected(change, match):
    data = _saved()
    change(data)
    with pytest.raises(SearchSpaceError, match=match):
        SearchSpace.from_json(data)


def test_non_dict_is_rejected():
    with pytest.raises(SearchSpaceError, match=r"must be a dict.*to_json"):
        SearchSpace.from_json(json.dumps(HYPERREC_SPACE.to_json()))


@pytest.mark.parametrize("constant", [object(), np.zeros(2), [{2: "b"}], (1, {3}), float])
def test_constants_json_cannot_hold_are_rejected_on_save(constant):
    space = SearchSpace("odd", [Float("x", 0.0, 1.0)], {"model": {"thing": constant}})
    with pytest.raises(SearchSpaceError, match=r"'model/thing'.*JSON cannot hold"):
        space.to_json()
