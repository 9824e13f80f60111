"""Tests of ``AT2Settings.with_assignments``: the ``FIELD=JSON`` form of the experiments' --set."""

import pytest

from at2_tune.core.settings import AT2Settings
from at2_tune.model.fit import OptimizerSettings


def test_assignments_apply_in_order_and_merge_optimizer_keys():
    settings = AT2Settings().with_assignments(
        ["leaders=3", 'residual_kernel="fixed"', " beta = 1", "leaders=5",
         'online_optimizer={"lr": 0.1}', 'unmatched_distance=0.5', "calibrate=true"])
    assert settings.leaders == 5 and settings.residual_kernel == "fixed"
    assert settings.beta == 1.0 and isinstance(settings.beta, float)
    assert settings.online_optimizer == OptimizerSettings("adam", 0.1)
    assert settings.unmatched_distance == 0.5 and settings.calibrate is True
    assert AT2Settings().with_assignments([]) == AT2Settings()


@pytest.mark.parametrize("assignment, message", [
    ("leaders", "setting 'leaders': expected FIELD=JSON with FIELD one of acquisition,"),
    ("leader=3", "setting 'leader=3': expected FIELD=JSON"),
    ("acquisition=thompson", "the value 'thompson' is not JSON"),
    ('leaders="3"', "leaders takes a JSON int, got str '3'"),
    ("leaders=true", "leaders takes a JSON int, got bool True"),
    ("beta=false", "beta takes a JSON float, got bool False"),
    ('online_optimizer={"rate": 1}', "online_optimizer takes a JSON object with keys among name"),
    ('acquisition="ucb"', "AT2Settings.acquisition='ucb' is not one of 'auto'"),
    ("residual_min_epochs=0", "AT2Settings.residual_min_epochs=0 must be an integer >= 1"),
])
def test_bad_assignments_name_the_assignment_and_the_fix(assignment, message):
    with pytest.raises(ValueError) as error:
        AT2Settings().with_assignments([assignment])
    assert message in str(error.value)
