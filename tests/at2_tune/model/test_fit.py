import dataclasses

import pytest

from at2_tune.core.settings import AT2Settings
from at2_tune.errors import AT2Error
from at2_tune.model.fit import OptimizerSettings


def test_warmup_starts_above_zero_and_decays_to_zero():
    schedule = OptimizerSettings("sgd", 0.02, schedule="warmup_linear", warmup_fraction=0.01)
    factors = [schedule.lr_factor(step, 1000) for step in range(1000)]
    assert factors[0] == pytest.approx(0.1)  # 10 warm-up steps; the first one already moves
    assert factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] == pytest.approx(1 / 990)


def test_short_fits_keep_the_same_shape_of_schedule():
    schedule = OptimizerSettings("sgd", 0.02, schedule="warmup_linear", warmup_fraction=0.01)
    assert schedule.lr_factor(0, 20) == 1.0  # one warm-up step: full rate, then linear decay
    assert schedule.lr_factor(10, 20) == pytest.approx(10 / 19)


def test_unknown_optimizer_or_schedule_is_a_clear_error():
    with pytest.raises(AT2Error, match="optimizer 'rmsprop' is not supported"):
        OptimizerSettings("rmsprop").build([])
    with pytest.raises(AT2Error, match="schedule 'cosine' is not supported"):
        OptimizerSettings(schedule="cosine").lr_factor(0, 10)


def test_settings_json_round_trip_and_reference_protocol():
    reference = AT2Settings.reference()
    model = reference.model
    assert model.n_inducing == 1000 and model.offline_epochs == 200
    assert model.offline_optimizer == OptimizerSettings("sgd", 0.02, 0.8, "warmup_linear", 0.01)
    assert model.online_epochs == 3.0 and model.unmatched_distance == 0.5
    assert reference.policy.name == "paper"
    for settings in (AT2Settings(), reference):
        assert AT2Settings.from_json(settings.to_json()) == settings


def test_reference_protocol_runs(hyperrec):
    from at2_tune.simulator import resolve_task, run_replay

    reference = AT2Settings.reference()
    small = dataclasses.replace(reference, model=dataclasses.replace(
        reference.model, n_inducing=24, offline_epochs=1, online_epochs=0.05))
    task = resolve_task(hyperrec, train_tasks=["CIFAR10"], test_task="CIFAR100", budget=2)
    result = run_replay(hyperrec, task, seed=0, settings=small)
    assert [r["query"] for r in result["trace"]] == [1, 2]
    for row in result["trace"]:  # the paper's protocol: UCB of the next epoch, recommend from all
        assert row["value"] == hyperrec.curve("CIFAR100", row["config_id"])[row["epoch"] - 1]
        assert row["rank"] == hyperrec.rank("CIFAR100", row["recommended_config_id"])
    assert result["settings"]["policy"]["name"] == "paper"


def _tiny_model(n_inducing: int = 8):
    import gpytorch
    import torch

    from at2_tune.model.gp import AT2GP, ModelShape

    shape = ModelShape(n_numeric=3, categorical_sizes=(2,), n_tasks=2, n_inducing=n_inducing)
    generator = torch.Generator().manual_seed(0)
    inducing = torch.rand(n_inducing, shape.layout.width, generator=generator, dtype=torch.float64)
    inducing[:, 3] = 0.0  # categorical index
    inducing[:, 4] = 1.0  # task index
    model = AT2GP(shape, inducing).double()
    return model, gpytorch.likelihoods.GaussianLikelihood().double(), shape, generator


def test_a_fit_reduces_the_loss_and_a_broken_model_fails_with_a_clear_error():
    import torch

    from at2_tune.model.fit import FitData, fit

    model, likelihood, shape, generator = _tiny_model()
    x = torch.rand(40, shape.layout.width, generator=generator, dtype=torch.float64)
    x[:, 3], x[:, 4] = 1.0, 0.0
    y = x[:, 0] * x[:, 5]
    data = FitData(x[:30], y[:30], x[30:], y[30:])
    losses = fit(model, likelihood, data, 60, 16, OptimizerSettings("adam", 0.05), generator)
    assert losses[-1] < losses[0]

    with torch.no_grad():
        model.variational_strategy.inducing_points[0, 0] = float("nan")
    with pytest.raises(AT2Error, match="failed even with Cholesky jitter 0.001"):
        fit(model, likelihood, data, 1, 16, OptimizerSettings(), generator)
