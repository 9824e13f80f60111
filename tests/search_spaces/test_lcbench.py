"""Tests of the LCBench space and its database vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import SearchSpaceError
from search_spaces import LCBENCH_SPACE, from_param_space, lcbench_space
from search_spaces.lcbench import LCBENCH_CONSTANTS, from_database_config, to_database_config

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)
SPACE = LCBENCH_SPACE

RAW = {"batch_size": 43, "imputation_strategy": "mean",
       "learning_rate_scheduler": "cosine_annealing", "loss": "cross_entropy_weighted",
       "network": "shapedmlpnet", "max_dropout": 0.53, "normalization_strategy": "standardize",
       "optimizer": "sgd", "cosine_annealing_T_max": 50, "cosine_annealing_eta_min": 1e-08,
       "activation": "relu", "max_units": 108, "mlp_shape": "funnel", "num_layers": True,
       "learning_rate": 0.023, "momentum": 0.45, "weight_decay": 0.064}


def test_layout():
    assert SPACE.name == "lcbench"
    assert SPACE.numeric_names == ("batch_size", "learning_rate", "momentum", "weight_decay",
                                   "num_layers", "max_units", "max_dropout")
    assert SPACE.n_numeric == 7 and SPACE.n_categorical == 0
    assert SPACE.categorical_names == () and SPACE.categorical_choices == ()
    assert lcbench_space().parameters == SPACE.parameters


@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_samples_validate_and_encode_in_the_unit_box(seed):
    config = SPACE.sample(np.random.default_rng(seed))
    assert SPACE.validate(config) == config and len(config) == 7
    numeric, categorical = SPACE.encode(config)
    assert numeric.shape == (7,) and categorical.shape == (0,)
    assert np.all((numeric >= 0.0) & (numeric <= 1.0))
    assert from_database_config(to_database_config(config)) == config


def test_samples_follow_declared_distributions(assert_declared_distribution):
    samples = SPACE.sample_many(np.random.default_rng(20240604), 5000)
    assert set(assert_declared_distribution(SPACE, samples)) == set(SPACE.numeric_names)


def test_same_seed_same_samples_and_different_seeds_differ():
    assert SPACE.sample_many(np.random.default_rng(1), 5) == SPACE.sample_many(
        np.random.default_rng(1), 5)
    assert SPACE.sample_many(np.random.default_rng(1), 5) != SPACE.sample_many(
        np.random.default_rng(2), 5)


def test_encode_known_values():
    config = {"batch_size": 16, "learning_rate": 10 ** -2.5, "momentum": 0.545,
              "weight_decay": 0.1, "num_layers": 3, "max_units": 256, "max_dropout": 0.25}
    numeric, _ = SPACE.encode(config)
    assert numeric == pytest.approx([0.0, 0.5, 0.5, 1.0, 0.5, 0.5, 0.25])
    top = SPACE.encode(dict(config, batch_size=512, max_units=64))[0]
    assert top[0] == 1.0 and top[5] == 0.0


def test_validation_errors():
    config = from_database_config(RAW)
    with pytest.raises(SearchSpaceError, match="config\\['num_layers'\\]=6 is outside "
                                               "IntUniform\\[1, 5\\]"):
        SPACE.validate(dict(config, num_layers=6))
    with pytest.raises(SearchSpaceError, match="config\\['num_layers'\\]=True is a bool"):
        SPACE.validate(dict(config, num_layers=True))
    with pytest.raises(SearchSpaceError, match="did you mean 'learning_rate'"):
        SPACE.validate(dict(config, learningrate=0.1))


def test_param_space_round_trips_through_the_generic_reader():
    assert from_param_space(SPACE.to_param_space(), name="lcbench").parameters == SPACE.parameters


# ---------------------------------------------------------------------- database vocabulary
def test_every_released_config_validates_and_round_trips(load_release_configs):
    raw_configs = load_release_configs("lcbench")
    assert sorted(raw_configs) == list(range(100))
    bool_layers = 0
    for config_id, raw in raw_configs.items():
        config = from_database_config(raw)
        assert SPACE.validate(config) == config, config_id
        assert type(config["num_layers"]) is int
        expected = dict(raw)
        if raw["num_layers"] is True:
            bool_layers += 1
            expected["num_layers"] = 1
        back = to_database_config(config)
        assert back == expected and list(back) == list(raw), config_id
        assert type(back["num_layers"]) is int
        assert {key: raw[key] for key in LCBENCH_CONSTANTS} == LCBENCH_CONSTANTS
    assert bool_layers == 36


def test_num_layers_true_means_one():
    config = from_database_config(RAW)
    assert config["num_layers"] == 1 and type(config["num_layers"]) is int
    assert to_database_config(config) == dict(RAW, num_layers=1)


@pytest.mark.parametrize("change, fragment", [
    ({"optimizer": "adam"}, "config['optimizer']='adam', but every LCBench config has "
                            "optimizer='sgd'"),
    ({"cosine_annealing_T_max": True}, "config['cosine_annealing_T_max']=True"),
    ({"learningrate": 0.1}, "unknown key 'learningrate' (did you mean 'learning_rate'?)"),
    ({"num_layers": False}, "config['num_layers']=False is a bool"),
    ({"max_units": 2048}, "config['max_units']=2048 is outside IntLogUniform[64, 1024]"),
])
def test_malformed_database_configs_are_rejected(change, fragment):
    with pytest.raises(SearchSpaceError) as info:
        from_database_config({**RAW, **change})
    assert fragment in str(info.value)
    assert str(info.value).startswith("LCBench database config: ")


def test_missing_database_key_is_rejected():
    raw = dict(RAW)
    del raw["mlp_shape"]
    with pytest.raises(SearchSpaceError, match="config is missing 'mlp_shape'"):
        from_database_config(raw)
    with pytest.raises(SearchSpaceError, match="must be a dict"):
        from_database_config([RAW])
