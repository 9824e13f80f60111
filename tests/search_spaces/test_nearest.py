"""Snapping configurations to the nearest one of a database grid."""

import math

import numpy as np
import pytest

from search_spaces import Categorical, Float, SearchSpace, get_space
from search_spaces.nearest import NearestConfig

SPACE = SearchSpace("two", [Float("x", 0.0, 10.0), Categorical("kind", ("a", "b"))])
GRID = [{"x": 1.0, "kind": "a"}, {"x": 5.0, "kind": "a"}, {"x": 5.0, "kind": "b"}]


def test_a_grid_configuration_maps_to_itself_and_others_to_the_closest():
    nearest = NearestConfig(SPACE, GRID)
    assert [nearest.index(c) for c in GRID] == [0, 1, 2]
    assert nearest.index({"x": 2.9, "kind": "a"}) == 0   # |2.9-1| < |2.9-5| on x/10
    assert nearest.index({"x": 3.1, "kind": "a"}) == 1
    # a categorical mismatch costs 1, more than any x distance (at most 1 after scaling)
    assert nearest.index({"x": 1.0, "kind": "b"}) == 2
    assert nearest.index({"x": 3.0, "kind": "a"}) == 0   # a tie goes to the first listed


def test_an_empty_grid_is_refused():
    with pytest.raises(ValueError, match="at least one configuration"):
        NearestConfig(SPACE, [])


@pytest.mark.parametrize("name", ["hyperrec", "lcbench"])
def test_database_configs_map_to_themselves_and_ray_samples_to_a_valid_index(name, request):
    db = request.getfixturevalue(name)
    space = get_space(db.space_name)
    nearest = NearestConfig(space, db.configs)
    assert [nearest.index(c) for c in db.configs] == list(range(db.n_configs))
    rng = np.random.default_rng(0)
    sampled = [nearest.index(space.sample(rng)) for _ in range(300)]
    assert all(0 <= i < db.n_configs for i in sampled)
    assert len(set(sampled)) > 60  # native samples spread over most of the grid


def test_a_ray_sample_with_every_branch_is_converted_before_snapping(hyperrec):
    space = get_space("hyperrec")
    nearest = NearestConfig(space, hyperrec.configs)
    for index, config in enumerate(hyperrec.configs):
        point = space.to_ray_sample(config)
        assert set(point) == set(space.to_param_space())  # every parameter, all branches
        assert nearest.index(point) == index


def test_a_ray_sample_of_a_config_round_trips_and_fills_inactive_branches():
    space = get_space("hyperrec")
    config = {"batch_size": 64, "model": "ResNet34", "optimizer": "Adam", "scheduler": "CyclicLR",
              "lr": 0.01, "weight_decay": 1e-4, "beta0": 0.9, "beta1": 0.99,
              "cyclic_gamma": 0.2, "max_lr": 0.012, "step_size_up": 4}
    point = space.to_ray_sample(config)
    assert point["max_lr_factor"] == pytest.approx(1.2)
    assert point["momentum"] == pytest.approx(math.sqrt(1e-3 * 1.0))  # inactive: log middle
    assert point["T_0"] == 11 and point["eta_min_factor"] == pytest.approx(0.7)
    assert space.from_ray_config(point) == pytest.approx(space.validate(config))
