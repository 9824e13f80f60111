"""Tests of search spaces built from a Ray Tune param_space."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray import tune
from ray.tune.search.sample import Categorical as RayCategorical
from ray.tune.search.variant_generator import generate_variants

from search_spaces import SearchSpaceError
from search_spaces import Categorical, Float, Integer, from_param_space

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)


def user_param_space() -> dict:
    return {
        "optimizer": {"lr": tune.loguniform(1e-5, 1e-1), "momentum": tune.uniform(0.0, 0.99),
                      "name": "sgd"},
        "model": {"layers": tune.randint(1, 5), "width": tune.lograndint(16, 513),
                  "units": tune.qrandint(8, 64, 8), "dropout": tune.quniform(0.0, 0.5, 0.1),
                  "activation": tune.choice(["relu", "tanh", "gelu"]),
                  "head": {"size": tune.qloguniform(1.0, 64.0, 1.0)}},
        "batch_size": tune.choice([32, 64, 128]),
        "epochs": 10,
        "tags": ["a", "b"],
    }


SPACE = from_param_space(user_param_space(), name="user")


def test_parameters_are_named_by_path_and_constants_kept():
    assert SPACE.name == "user"
    assert SPACE.numeric_names == ("optimizer/lr", "optimizer/momentum", "model/layers",
                                   "model/width", "model/units", "model/dropout",
                                   "model/head/size")
    assert SPACE.categorical_names == ("model/activation", "batch_size")
    assert SPACE.categorical_choices == (("relu", "tanh", "gelu"), (32, 64, 128))
    assert SPACE.constants == {"optimizer/name": "sgd", "epochs": 10, "tags": ["a", "b"]}


@pytest.mark.parametrize("domain, expected", [
    (tune.uniform(-1.0, 1.0), Float("p", -1.0, 1.0)),
    (tune.loguniform(1e-4, 1e-1), Float("p", 1e-4, 1e-1, log=True)),
    (tune.quniform(0.0, 1.0, 0.25), Float("p", 0.0, 1.0, q=0.25)),
    (tune.qloguniform(1.0, 100.0, 1.0), Float("p", 1.0, 100.0, log=True, q=1.0)),
    (tune.randint(1, 5), Integer("p", 1, 4)),
    (tune.lograndint(16, 513), Integer("p", 16, 512, log=True)),
    (tune.qrandint(1, 10, 1), Integer("p", 1, 9)),
    (tune.qrandint(8, 64, 8), Integer("p", 8, 64, q=8)),
    (tune.qrandint(1, 10, 3), Integer("p", 3, 9, q=3)),
    (tune.qlograndint(2, 16, 2), Integer("p", 2, 16, log=True, q=2)),
    (tune.choice(["a", 1, None, True]), Categorical("p", ("a", 1, None, True))),
])
def test_ray_domains_become_parameters(domain, expected):
    assert from_param_space({"p": domain}).parameters == (expected,)


@pytest.mark.parametrize("domain", [
    tune.randint(1, 5), tune.lograndint(1, 6), tune.qrandint(1, 10, 1), tune.qrandint(2, 10, 2),
    tune.qrandint(1, 10, 3), tune.qlograndint(2, 16, 2), tune.quniform(0.1, 0.5, 0.1),
    tune.choice(["x", "y", "z"]),
])
def test_inclusive_bounds_match_what_ray_samples(domain):
    """Ray's own sampler and ours reach exactly the same values (no off-by-one bounds)."""
    space = from_param_space({"p": domain})
    rng = np.random.default_rng(0)
    from_ray = {domain.sample(random_state=rng) for _ in range(3000)}
    ours = {config["p"] for config in space.sample_many(rng, 3000)}
    if isinstance(next(iter(ours)), float):
        from_ray, ours = {round(x, 9) for x in from_ray}, {round(x, 9) for x in ours}
    assert from_ray == ours
    for value in from_ray:
        space.validate({"p": value})


def test_to_param_space_round_trips():
    again = from_param_space(SPACE.to_param_space(), name="user")
    assert again.parameters == SPACE.parameters and again.constants == SPACE.constants


@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_nested_samples_validate_and_encode(seed):
    config = SPACE.sample(np.random.default_rng(seed))
    assert set(config) == {"optimizer", "model", "batch_size", "epochs", "tags"}
    assert set(config["model"]["head"]) == {"size"} and config["optimizer"]["name"] == "sgd"
    assert SPACE.validate(config) == config
    numeric, categorical = SPACE.encode(config)
    assert numeric.shape == (7,) and np.all((numeric >= 0) & (numeric <= 1))
    assert categorical.shape == (2,) and 0 <= categorical[0] < 3 and 0 <= categorical[1] < 3


def test_nested_samples_follow_declared_distributions(assert_declared_distribution):
    assert_declared_distribution(SPACE, SPACE.sample_many(np.random.default_rng(20240605), 4000))


def test_configs_generated_by_ray_validate():
    rng = np.random.default_rng(1)
    for _ in range(30):
        (_, ray_config), = generate_variants(user_param_space(), random_state=rng)
        assert SPACE.from_ray_config(ray_config) == ray_config
        assert SPACE.validate(ray_config) == ray_config


def test_encode_known_nested_values():
    config = SPACE.sample(np.random.default_rng(0))
    config["optimizer"]["lr"] = 1e-3
    config["model"]["layers"] = 4
    config["batch_size"] = 128
    numeric, categorical = SPACE.encode(config)
    assert numeric[0] == pytest.approx(0.5) and numeric[2] == 1.0 and categorical[1] == 2


def valid_config() -> dict:
    return SPACE.sample(np.random.default_rng(3))


def test_nested_validation_messages():
    config = valid_config()
    del config["optimizer"]["lr"]
    with pytest.raises(SearchSpaceError, match="config is missing 'optimizer/lr'"):
        SPACE.validate(config)
    config = valid_config()
    config["model"]["width"] = 1024
    with pytest.raises(SearchSpaceError, match="config\\['model'\\]\\['width'\\]=1024 is outside "
                                               "IntLogUniform\\[16, 512\\]"):
        SPACE.validate(config)
    with pytest.raises(SearchSpaceError, match="config\\['optimizer'\\]=0.1 should be a dict "
                                               "holding \\['lr', 'momentum', 'name'\\]"):
        SPACE.validate(dict(valid_config(), optimizer=0.1))
    with pytest.raises(SearchSpaceError, match="config\\['epochs'\\] is a dict"):
        SPACE.validate(dict(valid_config(), epochs={"n": 3}))
    with pytest.raises(SearchSpaceError, match="config\\['epochs'\\]=11 differs from the "
                                               "constant 10"):
        SPACE.validate(dict(valid_config(), epochs=11))
    with pytest.raises(SearchSpaceError, match="unknown key 'model/widht' \\(did you mean "
                                               "'model/width'\\?\\)"):
        config = valid_config()
        config["model"]["widht"] = 3
        SPACE.validate(config)


def test_missing_constants_are_filled_in():
    config = valid_config()
    del config["epochs"], config["optimizer"]["name"]
    assert SPACE.validate(config) == valid_config()


@pytest.mark.parametrize("param_space, fragments", [
    ({"a": {"b": tune.sample_from(lambda config: 1)}}, ["param_space['a']['b']",
                                                         "tune.sample_from"]),
    ({"a": {"b": lambda: 1}}, ["param_space['a']['b']", "is the function"]),
    ({"a": {"b": tune.grid_search([1, 2])}}, ["param_space['a']['b']", "tune.grid_search",
                                               "tune.choice([1, 2]) instead"]),
    ({"a": RayCategorical([1, 2]).grid()}, ["param_space['a']", "grid-search"]),
    ({"a": tune.randn(0.0, 1.0)}, ["param_space['a']", "tune.randn", "tune.uniform(low, high)"]),
    ({"a": tune.qrandn(0.0, 1.0, 0.5)}, ["param_space['a']", "normal distribution"]),
    ({"a": {"b": tune.choice([{"x": 1}, {"x": 2}])}}, ["param_space['a']['b']",
                                                        "non-primitive value {'x': 1}",
                                                        "choose between strings"]),
    ({"a": tune.choice([[1, 2], [3]])}, ["param_space['a']", "non-primitive value [1, 2]"]),
    ({"a": [tune.uniform(0, 1), 2]}, ["param_space['a']", "list holding tune domains"]),
    ({"a": {"b/c": tune.uniform(0, 1)}}, ["param_space['a']", "'b/c'", "without '/'"]),
    ({"a": {3: tune.uniform(0, 1)}}, ["param_space['a']", "key 3"]),
    ({"a": tune.choice(["x", "x"])}, ["param_space['a']", "twice"]),
    ({"a": tune.qrandint(5, 7, 4)}, ["param_space['a']", "no integer to sample"]),
])
def test_unsupported_domains_are_rejected_with_their_path(param_space, fragments):
    with pytest.raises(SearchSpaceError) as info:
        from_param_space(param_space)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_param_space_must_be_a_dict():
    with pytest.raises(SearchSpaceError, match="param_space must be a dict"):
        from_param_space([tune.uniform(0, 1)])


def test_a_finite_space_is_enumerated_with_its_conditions_and_a_large_one_is_not():
    from search_spaces import Condition, SearchSpace

    space = SearchSpace("finite", [Categorical("opt", ("sgd", "adam")),
                                   Integer("momentum_x10", 0, 9, q=3,
                                           condition=Condition("opt", "sgd")),
                                   Categorical("bs", (32, 64))], {"epochs": 5})
    configs = space.finite_configs(100)
    # sgd: 4 momenta (0, 3, 6, 9) x 2 batch sizes; adam: 2 batch sizes (no momentum)
    assert len(configs) == 10 and len({str(sorted(c.items())) for c in configs}) == 10
    assert configs[0] == {"opt": "sgd", "momentum_x10": 0, "bs": 32, "epochs": 5}
    assert {"opt": "adam", "bs": 64, "epochs": 5} in configs
    assert all(space.validate(c) == c for c in configs)
    assert space.finite_configs(9) is None  # larger than the limit
    assert from_param_space({"lr": tune.uniform(0, 1)}).finite_configs(10**6) is None
    assert from_param_space({"n": tune.randint(0, 10**9)}).finite_configs(100) is None
