"""Tests of the HyperRec space, its Ray Tune export and its database vocabulary."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import SearchSpaceError
from search_spaces import HYPERREC_SPACE, hyperrec_space
from search_spaces.hyperrec import from_database_config, to_database_config

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)
SPACE = HYPERREC_SPACE

ADAM_COSINE = {"batch_size": 99, "model": "ResNet34", "optimizer": "Adam",
               "scheduler": "CosineAnnealingWarmRestarts", "lr": 0.001, "weight_decay": 1e-4,
               "beta0": 0.9, "beta1": 0.99, "T_0": 15, "T_mult": 2, "eta_min": 0.0007}
RAW_ADAM_CYCLIC = {
    "model": "resnet50", "nepoch": 75, "batchsize": 64, "optimizer": "Adam",
    "scheduler": "CyclicLR",
    "optimizer_param": {"lr": 0.01, "weight_decay": 1e-4, "betas": [0.9, 0.99]},
    "scheduler_param": {"mode": "exp_range", "base_lr": 0.01, "max_lr": 0.012,
                        "step_size_up": 4, "gamma": 0.2, "cycle_momentum": False},
}


def error_of(config) -> str:
    with pytest.raises(SearchSpaceError) as info:
        SPACE.validate(config)
    return str(info.value)


# ---------------------------------------------------------------------- layout
def test_encoding_layout():
    assert SPACE.name == "hyperrec"
    assert SPACE.numeric_names == (
        "batch_size", "lr", "weight_decay", "beta0", "beta1", "momentum", "step_size",
        "step_gamma", "exp_gamma", "cyclic_gamma", "max_lr", "step_size_up", "T_0", "T_mult",
        "eta_min")
    assert SPACE.n_numeric == 15
    assert SPACE.categorical_names == ("model", "optimizer", "scheduler")
    assert SPACE.categorical_choices == (
        ("ResNet34", "ResNet50"), ("Adam", "Momentum"),
        ("StepLR", "ExponentialLR", "CyclicLR", "CosineAnnealingWarmRestarts"))
    assert hyperrec_space().parameters == SPACE.parameters


# ---------------------------------------------------------------------- sampling / encoding
@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_samples_validate_and_encode_in_the_unit_box(seed):
    config = SPACE.sample(np.random.default_rng(seed))
    assert SPACE.validate(config) == config
    numeric, categorical = SPACE.encode(config)
    assert np.all((numeric >= 0.0) & (numeric <= 1.0))
    inactive = [i for i, name in enumerate(SPACE.numeric_names) if name not in config]
    assert len(inactive) == 15 - (len(config) - 3) and np.all(numeric[inactive] == 0.0)
    assert [0 <= index < len(choices)
            for index, choices in zip(categorical, SPACE.categorical_choices)] == [True] * 3


@PROPERTY_SETTINGS
@given(seed=SEEDS)
def test_sampled_configs_round_trip_through_the_database_vocabulary(seed):
    config = SPACE.sample(np.random.default_rng(seed))
    assert from_database_config(to_database_config(config)) == config


def test_samples_follow_declared_distributions(assert_declared_distribution):
    samples = SPACE.sample_many(np.random.default_rng(20240602), 8000)
    p_values = assert_declared_distribution(SPACE, samples)
    assert "max_lr" in p_values and "eta_min" in p_values and "T_0:branch" in p_values


def test_same_seed_same_samples_and_different_seeds_differ():
    assert SPACE.sample_many(np.random.default_rng(3), 10) == SPACE.sample_many(
        np.random.default_rng(3), 10)
    assert SPACE.sample_many(np.random.default_rng(3), 10) != SPACE.sample_many(
        np.random.default_rng(4), 10)


def encoded(config) -> dict[str, float]:
    numeric, _ = SPACE.encode(config)
    return dict(zip(SPACE.numeric_names, numeric))


def test_encode_known_values():
    low = {"batch_size": 80, "model": "ResNet50", "optimizer": "Momentum", "scheduler": "StepLR",
           "lr": 1e-4, "weight_decay": 1e-4, "momentum": 10 ** -1.5, "step_size": 11,
           "step_gamma": 0.5}
    values = encoded(low)
    assert values["lr"] == 0.0 and values["batch_size"] == 0.5
    assert values["weight_decay"] == pytest.approx(0.5)
    assert values["momentum"] == pytest.approx(0.5)
    assert values["step_size"] == 0.5 and values["step_gamma"] == 1.0
    inactive = ("beta0", "beta1", "exp_gamma", "max_lr", "eta_min")
    assert [values[name] for name in inactive] == [0.0] * 5
    assert SPACE.encode(low)[1].tolist() == [1, 1, 0]

    cyclic = {**{k: low[k] for k in ("batch_size", "model", "optimizer", "lr", "weight_decay",
                                     "momentum")},
              "scheduler": "CyclicLR", "lr": 0.1, "cyclic_gamma": 0.1, "max_lr": 0.15,
              "step_size_up": 1}
    values = encoded(cyclic)
    assert values["lr"] == 1.0 and values["max_lr"] == 1.0 and values["step_size_up"] == 0.0
    assert values["cyclic_gamma"] == 0.0
    assert encoded({**cyclic, "lr": 1e-4, "max_lr": 1.1e-4})["max_lr"] == pytest.approx(0.0)

    cosine = dict(ADAM_COSINE, lr=0.1, eta_min=0.09, T_0=2, T_mult=4, beta0=0.999, beta1=0.8)
    values = encoded(cosine)
    assert values["eta_min"] == 1.0 and values["T_0"] == 0.0 and values["T_mult"] == 1.0
    assert values["beta0"] == 1.0 and values["beta1"] == 0.0
    assert encoded(dict(ADAM_COSINE, lr=1e-4, eta_min=5e-5))["eta_min"] == pytest.approx(0.0)
    assert SPACE.encode(cosine)[1].tolist() == [0, 0, 3]


# ---------------------------------------------------------------------- validation messages
def test_out_of_range_message():
    assert error_of(dict(ADAM_COSINE, lr=0.5)) == (
        "config['lr']=0.5 is outside LogUniform(0.0001, 0.1) of the 'hyperrec' space; choose a "
        "value in [0.0001, 0.1]")


def test_missing_branch_parameter_message():
    config = dict(ADAM_COSINE)
    del config["beta0"]
    assert "config is missing 'beta0': optimizer='Adam' requires 'beta0'" in error_of(config)


def test_inactive_branch_parameter_message():
    assert error_of(dict(ADAM_COSINE, momentum=0.5)) == (
        "'momentum' belongs to optimizer='Momentum' but the config has optimizer='Adam'; "
        "remove it")


def test_unknown_key_message():
    assert "unknown key 'beta_0' (did you mean 'beta0'?)" in error_of(
        dict(ADAM_COSINE, beta_0=0.9))


def test_eta_min_must_be_the_declared_fraction_of_lr():
    assert SPACE.validate(dict(ADAM_COSINE, eta_min=0.0009 * (1 + 1e-10)))
    message = error_of(dict(ADAM_COSINE, eta_min=0.00095))
    assert "config['eta_min']=0.00095 is 0.95 x config['lr']=0.001" in message
    assert "choose a value in [0.0005, 0.0009]" in message


# ---------------------------------------------------------------------- Ray Tune
def test_param_space_is_flat_and_declares_every_parameter():
    from ray.tune.search import sample

    param_space = SPACE.to_param_space()
    expected = {p.name for p in SPACE.parameters} - {"max_lr", "eta_min"}
    assert set(param_space) == expected | {"max_lr_factor", "eta_min_factor"}
    batch = param_space["batch_size"]
    assert isinstance(batch, sample.Integer) and (batch.lower, batch.upper) == (32, 129)
    assert isinstance(param_space["lr"].get_sampler(), sample.LogUniform)
    assert (param_space["lr"].lower, param_space["lr"].upper) == (1e-4, 1e-1)
    assert param_space["scheduler"].categories == list(SPACE.categorical_choices[2])
    factor = param_space["max_lr_factor"]
    assert isinstance(factor.get_sampler(), sample.Uniform)
    assert (factor.lower, factor.upper) == (1.1, 1.5)
    assert (param_space["eta_min_factor"].lower, param_space["eta_min_factor"].upper) == (0.5, 0.9)


def test_configs_sampled_by_ray_convert_to_valid_configs(assert_declared_distribution):
    """Ray's own samplers (one ``domain.sample`` per key) + from_ray_config = the declared space."""
    param_space = SPACE.to_param_space()
    rng = np.random.default_rng(20240603)
    configs = []
    for _ in range(3000):
        ray_config = {key: domain.sample(random_state=rng) for key, domain in param_space.items()}
        config = SPACE.from_ray_config(ray_config)
        if config["scheduler"] == "CyclicLR":
            assert config["max_lr"] == min(1.0, ray_config["lr"] * ray_config["max_lr_factor"])
        configs.append(config)
    assert {config["scheduler"] for config in configs} == set(SPACE.categorical_choices[2])
    assert_declared_distribution(SPACE, configs)


def test_generate_variants_output_converts():
    from ray.tune.search.variant_generator import generate_variants

    rng = np.random.default_rng(5)
    for _ in range(20):
        (_, ray_config), = generate_variants(SPACE.to_param_space(), random_state=rng)
        config = SPACE.from_ray_config(ray_config)
        assert SPACE.validate(config) == config
        assert not any(key.endswith("_factor") for key in config)


def test_from_ray_config_reports_a_bad_factor():
    ray_config = dict(batch_size=64, model="ResNet50", optimizer="Adam", scheduler="CyclicLR",
                      lr=0.01, weight_decay=1e-4, beta0=0.9, beta1=0.99, momentum=0.5,
                      step_size=3, step_gamma=0.2, exp_gamma=0.9, cyclic_gamma=0.2,
                      max_lr_factor=1.2, step_size_up=4, T_0=3, T_mult=2, eta_min_factor=0.7)
    assert SPACE.from_ray_config(ray_config)["max_lr"] == pytest.approx(0.012)
    with pytest.raises(SearchSpaceError, match="max_lr_factor'\\]=2.0 is outside the factor "
                                               "U\\(1.1, 1.5\\)"):
        SPACE.from_ray_config(dict(ray_config, max_lr_factor=2.0))


# ---------------------------------------------------------------------- database vocabulary
def test_every_released_config_validates_and_round_trips(load_release_configs):
    raw_configs = load_release_configs("hyperrec")
    assert sorted(raw_configs) == list(range(100))
    for config_id, raw in raw_configs.items():
        config = from_database_config(raw)
        assert SPACE.validate(config) == config, config_id
        assert to_database_config(config) == raw, config_id
        assert list(to_database_config(config)) == list(raw), config_id


def test_conversion_of_a_cyclic_adam_config():
    config = from_database_config(RAW_ADAM_CYCLIC)
    assert config == {"batch_size": 64, "model": "ResNet50", "optimizer": "Adam",
                      "scheduler": "CyclicLR", "lr": 0.01, "weight_decay": 1e-4, "beta0": 0.9,
                      "beta1": 0.99, "cyclic_gamma": 0.2, "max_lr": 0.012, "step_size_up": 4}
    assert to_database_config(config) == RAW_ADAM_CYCLIC
    assert to_database_config(config, nepoch=10)["nepoch"] == 10


def mutated(path: tuple, value) -> dict:
    raw = copy.deepcopy(RAW_ADAM_CYCLIC)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize("path, value, fragment", [
    (("batch_size",), 64, "unknown key 'batch_size' (did you mean 'batchsize'?)"),
    (("nepoch",), ..., "config is missing 'nepoch'"),
    (("nepoch",), True, "config['nepoch']=True is not a positive int"),
    (("model",), "resnet18", "config['model']='resnet18' is not one of ['resnet34', 'resnet50']"),
    (("optimizer",), "Momentum", "config['optimizer']='Momentum' is not one of ['Adam', 'SGD']"),
    (("scheduler",), "OneCycleLR", "config['scheduler']='OneCycleLR' is not one of"),
    (("optimizer_param",), [0.01], "config['optimizer_param'] must be a dict"),
    (("optimizer_param", "momentum"), 0.9, "config['optimizer_param'] has the unknown key "
                                           "'momentum'"),
    (("optimizer_param", "betas"), [0.9], "['betas']=[0.9] is not a list of two numbers"),
    (("scheduler_param", "base_lr"), 0.02, "['base_lr']=0.02 differs from "
                                           "config['optimizer_param']['lr']=0.01"),
    (("scheduler_param", "mode"), "triangular", "use mode='exp_range'"),
    (("scheduler_param", "cycle_momentum"), ..., "config['scheduler_param'] is missing "
                                                  "'cycle_momentum'"),
    (("scheduler_param", "cycle_momentum"), True, "needs cycle_momentum=False"),
    (("scheduler_param", "gamma"), 0.9, "config['cyclic_gamma']=0.9 is outside LogUniform(0.1, "
                                        "0.5) of the 'hyperrec' space; choose a value in [0.1, "
                                        "0.5] (database field scheduler_param['gamma'])"),
    (("optimizer_param", "betas"), [0.9, 1.5], "(database field optimizer_param['betas'][1])"),
    (("batchsize",), 31.5, "(database field batchsize)"),
    (("scheduler_param", "max_lr"), 0.02, "(database field scheduler_param['max_lr'])"),
])
def test_malformed_database_configs_are_rejected(path, value, fragment):
    with pytest.raises(SearchSpaceError) as info:
        from_database_config(mutated(path, value))
    assert fragment in str(info.value)
    assert str(info.value).startswith("HyperRec database config: ")


def test_sgd_cyclic_config_must_not_carry_cycle_momentum():
    raw = mutated(("optimizer",), "SGD")
    raw["optimizer_param"] = {"lr": 0.01, "weight_decay": 1e-4, "momentum": 0.5}
    with pytest.raises(SearchSpaceError, match="unknown key 'cycle_momentum'"):
        from_database_config(raw)
    del raw["scheduler_param"]["cycle_momentum"]
    assert from_database_config(raw)["optimizer"] == "Momentum"
    assert to_database_config(from_database_config(raw)) == raw


def test_to_database_config_validates_its_input():
    with pytest.raises(SearchSpaceError, match="config\\['lr'\\]=0.5 is outside"):
        to_database_config(dict(ADAM_COSINE, lr=0.5))
    with pytest.raises(SearchSpaceError, match="nepoch=0 is not a positive int"):
        to_database_config(ADAM_COSINE, nepoch=0)
