"""Fixtures shared by the search-space tests: the release data folder and a distribution check."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from scipy import stats

from search_spaces import Categorical, Float, Integer, Ratio, SearchSpace
from search_spaces.params import choice_index
from search_spaces.paths import flatten

P_THRESHOLD = 1e-3
"""Fixed seeds make every statistical test deterministic; this only guards against a bug."""


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder named by ``AT2_DATA_DIR`` (holding ``hyperrec/`` and ``lcbench/``)."""
    value = os.environ.get("AT2_DATA_DIR")
    if not value:
        pytest.skip("AT2_DATA_DIR is not set; point it at the folder holding hyperrec/configs.pkl "
                    "and lcbench/configs.pkl (e.g. AT2_DATA_DIR=/work/shared/data)")
    folder = Path(value)
    if not folder.is_dir():
        pytest.skip(f"AT2_DATA_DIR={value} is not a directory")
    return folder


@pytest.fixture(scope="session")
def load_release_configs(data_dir: Path) -> Callable[[str], dict[int, dict[str, Any]]]:
    """``load(database)`` -> the released ``configs.pkl`` of that database, loaded safely."""
    from at2_tune.databases.safe_pickle import safe_load_file

    def load(database: str) -> dict[int, dict[str, Any]]:
        path = data_dir / database / "configs.pkl"
        if not path.is_file():
            pytest.skip(f"{path} is missing")
        return safe_load_file(path)

    return load


def _activity_probability(space: SearchSpace, name: str) -> float:
    condition = space.parameter(name).condition
    if condition is None:
        return 1.0
    parent = space.parameter(condition.parent)
    share = sum(1 for choice in parent.choices if condition.holds(choice)) / len(parent.choices)
    return share * _activity_probability(space, condition.parent)


def _integer_pmf(param: Integer) -> tuple[np.ndarray, np.ndarray]:
    first, last = param.low // param.q, param.high // param.q
    indices = np.arange(first, last + 1)
    if param.log:
        weights = np.log(indices + 1.0) - np.log(indices)
        weights /= math.log(last + 1.0) - math.log(first)
    else:
        weights = np.full(len(indices), 1.0 / len(indices))
    return indices * param.q, weights


def _chisquare_p(observed_values: np.ndarray, support: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square p-value, with neighbouring support points pooled to expected counts >= 20."""
    total = len(observed_values)
    counts = np.array([np.count_nonzero(observed_values == value) for value in support])
    assert counts.sum() == total, "a sample fell outside the declared support"
    pooled_observed, pooled_expected, run_observed, run_expected = [], [], 0.0, 0.0
    for count, probability in zip(counts, pmf):
        run_observed += count
        run_expected += probability * total
        if run_expected >= 20:
            pooled_observed.append(run_observed)
            pooled_expected.append(run_expected)
            run_observed = run_expected = 0.0
    if run_expected:
        if pooled_expected:
            pooled_observed[-1] += run_observed
            pooled_expected[-1] += run_expected
        else:
            pooled_observed, pooled_expected = [run_observed], [run_expected]
    if len(pooled_expected) < 2:
        return 1.0
    return float(stats.chisquare(pooled_observed, pooled_expected).pvalue)


def _uniform_ks_p(values: np.ndarray, low: float, high: float) -> float:
    return float(stats.kstest(values, "uniform", args=(low, high - low)).pvalue)


def check_declared_distribution(space: SearchSpace, samples: list[dict[str, Any]]) -> dict:
    """Test every parameter's samples against its declared distribution; returns the p-values.

    Branch frequencies against the product of 1/k along the condition chain (binomial test),
    categoricals and integers with chi-square on the exact pmf, floats with a KS test on the
    value (log of it for log parameters), Ratio parameters with a KS test on value / base.
    """
    flat_samples = [flatten(sample) for sample in samples]
    p_values: dict[str, float] = {}
    for param in space.parameters:
        active = [flat for flat in flat_samples if param.name in flat]
        probability = _activity_probability(space, param.name)
        if probability == 1.0:
            assert len(active) == len(samples), f"{param.name} must always be active"
        else:
            p_values[f"{param.name}:branch"] = float(
                stats.binomtest(len(active), len(samples), probability).pvalue)
        if isinstance(param, Categorical):
            indices = np.array([choice_index(param.choices, flat[param.name]) for flat in active])
            uniform = np.full(len(param.choices), 1.0 / len(param.choices))
            p_values[param.name] = _chisquare_p(indices, np.arange(len(param.choices)), uniform)
            continue
        values = np.array([flat[param.name] for flat in active], dtype=np.float64)
        if isinstance(param, Integer):
            p_values[param.name] = _chisquare_p(values, *_integer_pmf(param))
        elif isinstance(param, Float) and param.q is not None:
            steps = values / param.q
            assert np.allclose(steps, np.round(steps)), f"{param.name} left its q-grid"
        elif isinstance(param, Float):
            transform = np.log if param.log else np.asarray
            p_values[param.name] = _uniform_ks_p(transform(values), float(transform(param.low)),
                                                 float(transform(param.high)))
        elif isinstance(param, Ratio):
            bases = np.array([flat[param.base] for flat in active])
            factors = values / bases
            if param.cap is not None:
                assert np.all(values <= param.cap)
                uncapped = bases * param.factor_high <= param.cap
                factors = factors[uncapped]
            p_values[param.name] = _uniform_ks_p(factors, param.factor_low, param.factor_high)
    failing = {key: value for key, value in p_values.items() if not value > P_THRESHOLD}
    assert not failing, f"samples do not follow the declared distributions: {failing}"
    return p_values


@pytest.fixture(scope="session")
def assert_declared_distribution() -> Callable[[SearchSpace, list[dict[str, Any]]], dict]:
    """:func:`check_declared_distribution` as a fixture."""
    return check_declared_distribution
