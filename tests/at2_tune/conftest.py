import pytest

from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, ModelSettings, PolicySettings

FAST = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=1, online_steps=2, hidden_dim=8,
                                 feature_dim=4))
"""Tiny settings: the tests check behaviour, not tuning quality."""


@pytest.fixture(scope="session")
def fast_settings() -> AT2Settings:
    return FAST


@pytest.fixture(scope="session")
def two_task_prior(hyperrec) -> PriorData:
    return PriorData.from_database(hyperrec, ["CIFAR10", "SUN397SUB1"], seed_profile=0)


FROZEN = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=3, hidden_dim=8, feature_dim=4))
"""Tiny settings with the default online protocol (hyperparameters frozen online)."""

LEADERS = AT2Settings(FROZEN.model, PolicySettings(name="leaders"))
"""``FROZEN`` with the ``leaders`` policy: for tests of how a policy's order drives several
slots (the default ``planned`` policy may train one configuration where its plan says so)."""


@pytest.fixture(scope="session")
def toy():
    """(space, prior, target curves) of the synthetic prior (``tests/at2_tune/synthetic.py``)."""
    import synthetic_prior as synthetic

    configs = synthetic.toy_configs()
    return synthetic.TOY_SPACE, synthetic.toy_prior(configs=configs), synthetic.toy_target(configs)


@pytest.fixture(scope="session")
def frozen_settings() -> AT2Settings:
    return FROZEN


@pytest.fixture(scope="session")
def leaders_settings() -> AT2Settings:
    return LEADERS
