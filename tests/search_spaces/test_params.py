"""Tests of the generic parameter model: parameters, SearchSpace, validation, encoding."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import SearchSpaceError
from search_spaces import (Categorical, Condition, Float, HYPERREC_SPACE, Integer,
                           InvalidConfigError, LCBENCH_SPACE, Ratio, SearchSpace, get_space)
from search_spaces.paths import flatten

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


def toy_space() -> SearchSpace:
    """Every parameter kind, a condition on a conditional parent, a capped Ratio."""
    return SearchSpace("toy", [
        Categorical("kind", ("a", "b", "c")),
        Categorical("flavor", ("x", "y"), condition=Condition("kind", ("a", "b"))),
        Integer("count", 1, 6),
        Integer("width", 16, 512, log=True),
        Integer("step", 8, 64, q=8),
        Integer("log_step", 4, 64, log=True, q=4),
        Float("rate", 1e-4, 1.0, log=True),
        Float("share", 0.0, 1.0),
        Float("grid", 0.1, 0.9, q=0.1),
        Float("deep", 2.0, 4.0, condition=Condition("flavor", "y")),
        Ratio("capped", "rate", 1.5, 3.0, cap=1.0),
        Ratio("half", "rate", 0.4, 0.6),
        Float("only_a", -1.0, 1.0, condition=Condition("kind", "a")),
    ])


TOY = toy_space()
VALID = {"kind": "a", "flavor": "y", "count": 3, "width": 64, "step": 16, "log_step": 8,
         "rate": 0.01, "share": 0.5, "grid": 0.3, "deep": 3.0, "capped": 0.02, "half": 0.005,
         "only_a": 0.0}


def with_changes(**changes):
    config = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            del config[key]
        else:
            config[key] = value
    return config


def error_of(space: SearchSpace, config) -> str:
    with pytest.raises(SearchSpaceError) as info:
        space.validate(config)
    return str(info.value)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("build, fragment", [
    (lambda: Float("x", 1.0, 1.0), "must be below"),
    (lambda: Float("x", 0.0, 1.0, log=True), "log scale needs low > 0"),
    (lambda: Float("x", 0.0, float("inf")), "not a finite number"),
    (lambda: Float("x", 0.05, 1.0, q=0.1), "multiples of q=0.1"),
    (lambda: Float("x", 0.0, 1.0, q=-1), "positive number"),
    (lambda: Integer("x", 5, 1), "swap the bounds"),
    (lambda: Integer("x", 0, 10, log=True), "log scale needs low > 0"),
    (lambda: Integer("x", 1, 10, q=4), "multiples of q=4"),
    (lambda: Integer("x", 1.5, 10), "is not an int"),
    (lambda: Categorical("x", ()), "no choices"),
    (lambda: Categorical("x", ("a", "a")), "twice"),
    (lambda: Categorical("x", ({"a": 1},)), "must be str, int, float, bool or None"),
    (lambda: Categorical("", ("a",)), "non-empty string"),
    (lambda: Ratio("x", "lr", 1.5, 1.1), "factor_low < factor_high"),
    (lambda: Ratio("x", "lr", 1.1, 1.5, encode_low=0.1), "both encode_low and encode_high"),
    (lambda: Condition("kind", ()), "lists no values"),
])
def test_invalid_parameter_definitions_raise(build, fragment):
    with pytest.raises(SearchSpaceError, match=fragment):
        build()


def test_condition_accepts_one_value_or_several():
    assert Condition("optimizer", "Adam").values == ("Adam",)
    assert Condition("optimizer", ["Adam", "SGD"]).values == ("Adam", "SGD")
    assert Condition("optimizer", "Adam").describe() == "optimizer='Adam'"
    assert Condition("s", ("A", "B")).describe() == "s in ['A', 'B']"


def test_categorical_keeps_true_and_one_apart():
    param = Categorical("x", (1, True, "1"))
    space = SearchSpace("s", [param])
    assert space.validate({"x": True}) == {"x": True}
    one = space.validate({"x": 1})["x"]
    assert one == 1 and type(one) is int  # the int choice, not True
    assert space.encode({"x": True})[1].tolist() == [1]


@pytest.mark.parametrize("parameters, constants, fragment", [
    ([Float("a", 0, 1), Float("a", 0, 1)], None, "declares 'a' twice"),
    ([Float("a", 0, 1, condition=Condition("k", "x"))], None, "not a categorical"),
    ([Float("a", 0, 1, condition=Condition("k", "x")), Categorical("k", ("x",))], None,
     "declared before it"),
    ([Categorical("k", ("x", "y")), Float("a", 0, 1, condition=Condition("k", "z"))], None,
     "k='z', which is not one of"),
    ([Ratio("r", "lr", 1, 2)], None, "declare the base first"),
    ([Categorical("lr", ("x",)), Ratio("r", "lr", 1, 2)], None, "not an Integer or Float"),
    ([Float("lr", 0, 1), Ratio("r", "lr", 1, 2)], None, "needs a positive base"),
    ([Categorical("k", ("x", "y")), Float("lr", 0.1, 1, condition=Condition("k", "x")),
      Ratio("r", "lr", 1, 2)], None, "give them the same condition"),
    ([Float("lr", 0.1, 1), Ratio("r", "lr", 1, 2), Float("r_factor", 0, 1)], None,
     "factor key"),
    ([Float("a", 0, 1), Float("a/b", 0, 1)], None, "is a value and also holds"),
    ([Float("a", 0, 1)], {"a": 3}, "both a parameter and a constant"),
    ([Float("a//b", 0, 1)], None, "empty part"),
    (["not a parameter"], None, "is not a parameter"),
])
def test_invalid_space_structure_raises(parameters, constants, fragment):
    with pytest.raises(SearchSpaceError, match=fragment):
        SearchSpace("s", parameters, constants)


def test_ratio_encode_bounds_default_to_the_base_range():
    capped = TOY.parameter("capped")
    assert (capped.encode_low, capped.encode_high) == (pytest.approx(1.5e-4), 1.0)
    half = TOY.parameter("half")
    assert (half.encode_low, half.encode_high) == (pytest.approx(4e-5), pytest.approx(0.6))


def test_space_description_lists_every_parameter():
    text = TOY.describe()
    assert text.splitlines()[0].startswith("search space 'toy': 13 parameters")
    for param in TOY.parameters:
        assert param.name in text
    assert "flavor='y'" in text and "kind in ['a', 'b']" in text
    assert "min(1, rate * U(1.5, 3))" in text


def test_space_exposes_encoding_layout():
    assert TOY.categorical_names == ("kind", "flavor")
    assert TOY.categorical_choices == (("a", "b", "c"), ("x", "y"))
    assert TOY.numeric_names == ("count", "width", "step", "log_step", "rate", "share", "grid",
                                 "deep", "capped", "half", "only_a")
    assert TOY.n_numeric == 11 and TOY.n_categorical == 2 and len(TOY) == 13
    with pytest.raises(SearchSpaceError, match="did you mean 'count'"):
        TOY.parameter("cout")


# ---------------------------------------------------------------------- sampling
@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_samples_validate_and_are_canonical(seed):
    config = TOY.sample(np.random.default_rng(seed))
    assert TOY.validate(config) == config
    for name, value in config.items():
        assert type(value) in (int, float, str), (name, value)
        assert (type(value) is int) == isinstance(TOY.parameter(name), Integer)


@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_encoding_is_in_unit_box_with_inactive_dims_zero(seed):
    config = TOY.sample(np.random.default_rng(seed))
    numeric, categorical = TOY.encode(config)
    assert numeric.shape == (TOY.n_numeric,) and numeric.dtype == np.float64
    assert categorical.shape == (TOY.n_categorical,) and categorical.dtype == np.int64
    assert np.all((numeric >= 0.0) & (numeric <= 1.0))
    for index, name in enumerate(TOY.numeric_names):
        if name not in config:
            assert numeric[index] == 0.0
    for index, choices in enumerate(TOY.categorical_choices):
        assert 0 <= categorical[index] < len(choices)


def test_same_seed_same_samples_and_different_seeds_differ():
    first = TOY.sample_many(np.random.default_rng(7), 25)
    again = TOY.sample_many(np.random.default_rng(7), 25)
    other = TOY.sample_many(np.random.default_rng(8), 25)
    assert first == again
    assert first != other


def test_sampling_consumes_only_the_given_generator():
    np.random.seed(0)
    legacy_state = np.random.get_state()[1].copy()
    TOY.sample_many(np.random.default_rng(1), 10)
    assert np.array_equal(np.random.get_state()[1], legacy_state)


def test_samples_follow_declared_distributions(assert_declared_distribution):
    samples = TOY.sample_many(np.random.default_rng(20240601), 6000)
    p_values = assert_declared_distribution(TOY, samples)
    assert {"deep:branch", "flavor:branch", "only_a:branch", "capped", "width",
            "log_step"} <= set(p_values)
    capped = [config for config in samples if config["rate"] * 3.0 > 1.0]
    assert capped and any(config["capped"] == 1.0 for config in capped)


def test_distribution_check_detects_a_wrong_distribution(assert_declared_distribution):
    """The checker has power: linear-uniform draws fail a log-uniform declaration."""
    declared = SearchSpace("declared", [Float("x", 1e-4, 1.0, log=True)])
    drawn = SearchSpace("drawn", [Float("x", 1e-4, 1.0)])
    with pytest.raises(AssertionError, match="do not follow the declared distributions"):
        assert_declared_distribution(declared, drawn.sample_many(np.random.default_rng(0), 2000))


def test_log_integer_matches_ray_lograndint_pmf():
    """floor(exp(U(log low, log(high + 1)))): P(k) ~ log((k + 1) / k)."""
    param = Integer("w", 1, 3, log=True)
    rng = np.random.default_rng(3)
    values = np.array([param.sample(rng) for _ in range(20000)])
    expected = np.log([2, 1.5, 4 / 3]) / np.log(4)
    observed = np.bincount(values, minlength=4)[1:] / len(values)
    assert np.allclose(observed, expected, atol=0.015)


def test_quantized_float_samples_are_clean_grid_values():
    param = Float("g", 0.1, 0.9, q=0.1)
    rng = np.random.default_rng(0)
    values = {param.sample(rng) for _ in range(500)}
    assert values == {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}


# ---------------------------------------------------------------------- validation
def test_validate_returns_plain_python_values():
    config = with_changes(kind=np.str_("a"), count=np.int64(3), width=64.0,
                          rate=np.float64(0.01), share=1)
    checked = TOY.validate(config)
    assert checked == with_changes(share=1.0)
    assert type(checked["kind"]) is str and type(checked["count"]) is int
    assert type(checked["width"]) is int and type(checked["rate"]) is float
    assert type(checked["share"]) is float


def test_error_is_a_value_error_with_the_key():
    with pytest.raises(ValueError) as info:
        TOY.validate(with_changes(rate=2.0))
    assert isinstance(info.value, InvalidConfigError) and info.value.key == "rate"


def test_unknown_key_suggests_the_closest_valid_key():
    message = error_of(TOY, with_changes(cout=3))
    assert "unknown key 'cout'" in message and "did you mean 'count'?" in message
    assert "remove or rename 'cout'" in message


def test_missing_always_active_parameter():
    message = error_of(TOY, with_changes(count=...))
    assert message == ("config is missing 'count' (IntUniform[1, 6]), which the 'toy' space "
                       "always requires; add an int in [1, 6]")


def test_missing_conditional_parameter_names_the_branch():
    message = error_of(TOY, with_changes(deep=...))
    assert "config is missing 'deep': flavor='y' requires 'deep'" in message
    assert "add a value in [2, 4]" in message


def test_parameter_of_inactive_branch():
    message = error_of(TOY, with_changes(kind="c", deep=..., only_a=...))
    assert message == ("'flavor' belongs to kind in ['a', 'b'] but the config has kind='c'; "
                       "remove it")


def test_parameter_below_an_inactive_parent():
    message = error_of(TOY, with_changes(kind="c", flavor=..., only_a=...))
    assert message == ("'deep' belongs to flavor='y' but 'flavor' is itself inactive in this "
                       "config; remove it")


def test_value_out_of_range():
    message = error_of(TOY, with_changes(rate=2.0))
    assert message == ("config['rate']=2.0 is outside LogUniform(0.0001, 1) of the 'toy' space; "
                       "choose a value in [0.0001, 1]")
    assert "choose an int in [1, 6]" in error_of(TOY, with_changes(count=7))


def test_value_not_an_allowed_choice():
    message = error_of(TOY, with_changes(kind="A"))
    assert message == ("config['kind']='A' is not one of Choice['a', 'b', 'c'] of the 'toy' "
                       "space; choose one of ['a', 'b', 'c'] (did you mean 'a'?)")


@pytest.mark.parametrize("key, value, fragment", [
    ("count", 2.5, "config['count']=2.5 is not a whole number"),
    ("count", True, "config['count']=True is a bool, not an integer"),
    ("count", "3", "config['count']='3' is a str, not an integer"),
    ("count", None, "config['count']=None is a NoneType, not an integer"),
    ("share", True, "config['share']=True is a bool, not a number"),
    ("share", "0.5", "config['share']='0.5' is a str, not a number"),
    ("share", math.nan, "config['share']=nan is not a finite number"),
    ("share", math.inf, "config['share']=inf is not a finite number"),
])
def test_value_of_the_wrong_type(key, value, fragment):
    message = error_of(TOY, with_changes(**{key: value}))
    assert fragment in message and "of the 'toy' space; use " in message


def test_value_off_the_quantization_grid():
    assert "choose a value on the grid, e.g. 0.3 or 0.4" in error_of(TOY, with_changes(grid=0.35))
    assert TOY.validate(with_changes(grid=0.30000000000000004))["grid"] == 0.30000000000000004
    assert "e.g. 8 or 16" in error_of(TOY, with_changes(step=12))
    assert "e.g. 8 or 12" in error_of(TOY, with_changes(log_step=10))


def test_ratio_checks_the_factor_with_relative_tolerance():
    rate = VALID["rate"]
    assert TOY.validate(with_changes(half=rate * 0.6 * (1 + 1e-12)))
    assert TOY.validate(with_changes(half=rate * 0.4 * (1 - 1e-12)))
    message = error_of(TOY, with_changes(half=rate * 0.6 * (1 + 1e-6)))
    assert "x config['rate']=0.01, outside rate * U(0.4, 0.6)" in message
    assert "choose a value in [0.004, 0.006]" in message
    assert "is 0.7 x config['rate']" in error_of(TOY, with_changes(half=rate * 0.7))


def test_ratio_respects_its_cap():
    assert TOY.validate(with_changes(rate=0.5, half=0.25, capped=1.0))["capped"] == 1.0
    assert TOY.validate(with_changes(rate=0.5, half=0.25, capped=0.8))["capped"] == 0.8
    message = error_of(TOY, with_changes(rate=0.5, half=0.25, capped=1.2))
    assert "choose a value in [0.75, 1]" in message and "min(1, rate * U(1.5, 3))" in message


def test_config_that_is_not_a_dict_or_has_non_string_keys():
    assert "must be a dict, got list" in error_of(TOY, [("kind", "a")])
    assert "config has the key 3 of type int" in error_of(TOY, {**VALID, 3: 1})


# ---------------------------------------------------------------------- encoding
def test_encode_known_values():
    config = with_changes(count=1, width=64, rate=0.01, share=0.25, capped=0.02, step=64)
    numeric, categorical = TOY.encode(config)
    encoded = dict(zip(TOY.numeric_names, numeric))
    assert encoded["count"] == 0.0 and encoded["step"] == 1.0
    assert encoded["width"] == pytest.approx(0.4)  # log(64 / 16) / log(512 / 16)
    assert encoded["rate"] == pytest.approx(0.5)  # log10 on [-4, 0]
    assert encoded["share"] == 0.25
    assert encoded["capped"] == pytest.approx((0.02 - 1.5e-4) / (1 - 1.5e-4))
    assert categorical.tolist() == [0, 1]


def test_encode_many_stacks_encode_and_handles_no_configs():
    configs = TOY.sample_many(np.random.default_rng(5), 8)
    numeric, categorical = TOY.encode_many(configs)
    assert numeric.shape == (8, TOY.n_numeric) and categorical.shape == (8, TOY.n_categorical)
    for row, config in enumerate(configs):
        single_numeric, single_categorical = TOY.encode(config)
        assert np.array_equal(numeric[row], single_numeric)
        assert np.array_equal(categorical[row], single_categorical)
    empty_numeric, empty_categorical = TOY.encode_many([])
    assert empty_numeric.shape == (0, TOY.n_numeric)
    assert empty_categorical.shape == (0, TOY.n_categorical)


def test_encode_rejects_invalid_configs():
    with pytest.raises(SearchSpaceError, match="config\\['rate'\\]=2.0 is outside"):
        TOY.encode(with_changes(rate=2.0))


# ---------------------------------------------------------------------- Ray Tune
def test_ray_sampled_configs_convert_to_valid_configs():
    from ray.tune.search.variant_generator import generate_variants

    param_space = TOY.to_param_space()
    assert set(param_space) == {p.name for p in TOY.parameters} - {"capped", "half"} | {
        "capped_factor", "half_factor"}
    rng = np.random.default_rng(11)
    kinds = set()
    for _ in range(150):
        (_, ray_config), = generate_variants(param_space, random_state=rng)
        config = TOY.from_ray_config(ray_config)
        kinds.add(config["kind"])
        assert config == TOY.validate(config)
        assert config["half"] == pytest.approx(config["rate"] * ray_config["half_factor"])
    assert kinds == {"a", "b", "c"}


def test_from_ray_config_drops_inactive_branches_and_checks_factors():
    ray_config = {**VALID, "kind": "c", "capped_factor": 2.0, "half_factor": 0.5}
    del ray_config["capped"], ray_config["half"]
    config = TOY.from_ray_config(ray_config)
    assert "flavor" not in config and "deep" not in config and "only_a" not in config
    assert config["capped"] == 0.02 and config["half"] == 0.005
    with pytest.raises(SearchSpaceError, match="half_factor'\\]=0.9 is outside the factor"):
        TOY.from_ray_config({**ray_config, "half_factor": 0.9})
    with pytest.raises(SearchSpaceError, match="both 'half' and 'half_factor'"):
        TOY.from_ray_config({**ray_config, "half": 0.005})
    assert "from_ray_config" in error_of(TOY, {**VALID, "half_factor": 0.5})


# ---------------------------------------------------------------------- package
def test_get_space_knows_the_builtin_spaces():
    assert get_space("hyperrec") is HYPERREC_SPACE
    assert get_space("LCBench") is LCBENCH_SPACE
    with pytest.raises(SearchSpaceError, match="the known spaces are \\['hyperrec', 'lcbench'\\]"):
        get_space("nasbench")
    with pytest.raises(SearchSpaceError, match="did you mean 'hyperrec'"):
        get_space("hyperec")


@pytest.mark.integration  # a fresh interpreter
def test_package_imports_without_ray():
    root = Path(__file__).resolve().parents[2]
    code = ("import sys, search_spaces, numpy as np\n"
            "search_spaces.HYPERREC_SPACE.sample(np.random.default_rng(0))\n"
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(root)})


def test_flat_configs_of_nested_spaces_are_unflattened():
    space = SearchSpace("nested", [Float("opt/lr", 0.1, 1.0), Integer("opt/steps", 1, 3)],
                        {"opt/name": "sgd"})
    assert space.validate({"opt/lr": 0.5, "opt": {"steps": 2}}) == {
        "opt": {"lr": 0.5, "steps": 2, "name": "sgd"}}
    assert flatten(space.sample(np.random.default_rng(0))).keys() == {
        "opt/lr", "opt/steps", "opt/name"}
