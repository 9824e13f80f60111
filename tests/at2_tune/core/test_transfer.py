"""The transfer posterior's calibration where the prior tasks trained nothing.

A synthetic family whose truth is known: tasks that agree closely (their optimal learning rates
differ by a factor 2) on a function of the configuration with a bump in the width, so the
prior tasks' spread at a cell is small and a configuration none of them trained can only be
guessed across configurations. The last 20 of 60 configurations are left out of every prior
task; three new tasks of the family observe the first two epochs of five trained
configurations, and the posterior's 90% intervals of the 20 untrained configurations' best
values are scored against the new tasks' true best values.
"""

import numpy as np
import pytest

import synthetic_prior as synthetic
from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, ModelSettings

Z90 = 1.6448536269514722
UNTRAINED = np.arange(40, 60)
SETTINGS = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=10, hidden_dim=8,
                                     feature_dim=4))


def _curves(configs, optimum_lr: float, seed: int) -> np.ndarray:
    """``(len(configs), N_EPOCHS)``: peak ``0.8 - 0.05 (log lr - log optimum)^2 + 0.08 sin(9
    width) + 0.03 [adam]``, rising at rate ``0.3 + 0.3 width``, noise 0.003."""
    rng = np.random.default_rng(seed)
    lr = np.log10([c["lr"] for c in configs])
    width = np.array([c["width"] for c in configs])
    adam = np.array([c["optimizer"] == "adam" for c in configs])
    peak = 0.8 - 0.05 * (lr - np.log10(optimum_lr)) ** 2 + 0.08 * np.sin(9 * width) + 0.03 * adam
    epochs = np.arange(1, synthetic.N_EPOCHS + 1)
    curves = peak[:, None] * (1 - np.exp(-(0.3 + 0.3 * width)[:, None] * epochs[None]))
    return np.clip(curves + 0.003 * rng.standard_normal(curves.shape), 0.0, 1.0)


@pytest.fixture(scope="module")
def scored():
    """Per new task: the untrained configurations' standardized errors with the posterior's
    std, and with the prior tasks' spread alone (the std before the GP's uncertainty of its
    guess and the map's were added)."""
    configs = synthetic.toy_configs(60, seed=1)
    curves = np.stack([_curves(configs, lr, seed=t)
                       for t, lr in enumerate(np.geomspace(7e-3, 1.4e-2, 4))])
    curves[:, UNTRAINED] = np.nan
    prior = PriorData(tuple(f"t{t}" for t in range(4)), tuple(configs), curves, "bumpy")
    with_guess, spread_alone = [], []
    for optimum, seed in ((8e-3, 90), (1e-2, 91), (1.2e-2, 92)):
        target = _curves(configs, optimum, seed)
        engine = AT2Engine(synthetic.TOY_SPACE, prior, SETTINGS, seed=0)
        for candidate in range(0, 40, 8):
            for epoch in (1, 2):
                engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))
        engine.condition()
        engine.posterior_source.condition(engine.evidence())  # every candidate's posterior
        posterior = engine.posterior()
        mean, std = posterior.best_value()
        surrogate = engine.surrogate
        truth = surrogate.transform.warp(target.max(axis=1))
        peak = posterior.mean[UNTRAINED].argmax(axis=1)
        _, error_scale, pooled = engine.posterior_source.base.spread
        spread = abs(surrogate.transform.target.scale) * error_scale * pooled[peak]
        error = truth[UNTRAINED] - mean[UNTRAINED]
        with_guess.append(error / std[UNTRAINED])
        spread_alone.append(error / spread)
    return np.concatenate(with_guess), np.concatenate(spread_alone)


def test_untrained_configurations_90_percent_intervals_cover_their_true_best_values(scored):
    z, _ = scored
    assert np.isfinite(z).all() and z.size == 60
    assert 0.85 <= np.mean(np.abs(z) <= Z90) <= 1.0
    # not calibrated by being uselessly wide: a normal's median |z| is 0.67
    assert 0.3 <= np.median(np.abs(z)) <= 1.2


def test_the_prior_tasks_spread_alone_is_overconfident_there(scored):
    """What the std was before (issue 38): the spread of tasks that agree says nothing about a
    configuration none of them trained."""
    _, z = scored
    assert np.mean(np.abs(z) <= Z90) < 0.4
    assert np.median(np.abs(z)) > 3.0


def test_where_no_cell_has_two_tasks_the_std_is_the_gps_with_the_maps_uncertainty():
    """Disjoint priors (two tasks that trained different configurations) measure no spread: the
    std of an unobserved candidate is the GP's (its std of the new task and its predictive
    variance of the prior tasks' curves), carrying the fitted map's uncertainty."""
    configs = synthetic.toy_configs(40, seed=2)
    curves = np.stack([_curves(configs, lr, seed=t) for t, lr in enumerate((8e-3, 1.2e-2))])
    curves[0, 20:] = np.nan
    curves[1, :20] = np.nan
    prior = PriorData(("a", "b"), tuple(configs), curves, "disjoint")
    target = _curves(configs, 1e-2, seed=93)
    engine = AT2Engine(synthetic.TOY_SPACE, prior, SETTINGS, seed=0)
    for candidate, epoch in ((0, 1), (0, 2), (25, 1), (25, 2)):
        engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))
    engine.condition()
    engine.posterior_source.condition(engine.evidence())
    posterior = engine.posterior()
    transfer = engine.posterior_source.base
    assert np.isnan(transfer.spread[0]).all() and not (transfer.spread[2] > 0).any()
    gp = transfer.gp.posterior()
    target_map = engine.surrogate.transform.target
    assert target_map.level_variance > 0
    model_mean = target_map.to_model(posterior.mean)
    unobserved = [c for c in range(40) if c not in (0, 25)]  # no residual correction
    guess = engine.surrogate.prior_task_variance(engine.evidence().encodings)
    scale = abs(target_map.scale)
    np.testing.assert_allclose(
        posterior.std[unobserved],
        np.sqrt(gp.std[unobserved] ** 2 + scale ** 2 * guess[unobserved]
                + target_map.map_variance(model_mean[unobserved])), rtol=1e-9)
    assert (posterior.std[unobserved] > np.sqrt(
        gp.std[unobserved] ** 2 + target_map.map_variance(model_mean[unobserved]))).all()
