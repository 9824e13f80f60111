"""Tests of the settings: the model/policy split and ``with_assignments`` (the ``--set`` form)."""

import pytest

from at2_tune.core.settings import AT2Settings, ModelSettings, PolicySettings
from at2_tune.model.fit import OptimizerSettings


def test_assignments_apply_in_order_and_merge_optimizer_keys():
    settings = AT2Settings().with_assignments(
        ["leaders=3", 'policy.name="paper"', " beta = 1", "policy.leaders=5",
         'online_optimizer={"lr": 0.1}', 'model.unmatched_distance=0.5', "online_steps=2"])
    assert settings.policy == PolicySettings("paper", leaders=5, beta=1.0)
    assert isinstance(settings.policy.beta, float)
    assert settings.model.online_optimizer == OptimizerSettings("adam", 0.1)
    assert settings.model.unmatched_distance == 0.5 and settings.model.online_steps == 2
    assert settings.model.online_gradient and not AT2Settings().model.online_gradient
    assert AT2Settings().with_assignments([]) == AT2Settings()


def test_the_offline_identity_is_the_model_settings_alone():
    base = AT2Settings()
    other_policy = AT2Settings(policy=PolicySettings("paper", beta=3.0))
    other_model = AT2Settings(ModelSettings(feature_dim=9))
    assert base.offline_json() == other_policy.offline_json()
    assert base.offline_json() != other_model.offline_json()
    assert base.offline_json()["feature_dim"] == 8 and "leaders" not in base.offline_json()


def test_settings_saved_before_the_split_are_a_clear_error():
    with pytest.raises(ValueError, match=r"keys \['acquisition', 'beta'\]; expected 'model' and "
                                         "'policy'.*start a new run"):
        AT2Settings.from_json({"acquisition": "leaders", "beta": 0.25})


@pytest.mark.parametrize("assignment, message", [
    ("leaders", "setting 'leaders': expected FIELD=JSON with FIELD one of model.n_inducing,"),
    ("leader=3", "setting 'leader=3': expected FIELD=JSON"),
    ("policy.n_inducing=3", "setting 'policy.n_inducing=3': expected FIELD=JSON"),
    ("policy.name=paper", "the value 'paper' is not JSON"),
    ('leaders="3"', "leaders takes a JSON int, got str '3'"),
    ("leaders=true", "leaders takes a JSON int, got bool True"),
    ("beta=false", "beta takes a JSON float, got bool False"),
    ('online_optimizer={"rate": 1}', "online_optimizer takes a JSON object with keys among name"),
    ('policy.name="ucb"',
     "policy.name='ucb' is not one of 'auto', 'planned', 'leaders', 'paper', 'no_prior'"),
    ('output_warp="log"', "model.output_warp='log' is not one of 'auto'"),
    ("residual_min_epochs=0", "PolicySettings.residual_min_epochs=0 must be an integer >= 1"),
    ("leaders=0", "PolicySettings.leaders=0 must be an integer >= 1"),
])
def test_bad_assignments_name_the_assignment_and_the_fix(assignment, message):
    with pytest.raises(ValueError) as error:
        AT2Settings().with_assignments([assignment])
    assert message in str(error.value)
