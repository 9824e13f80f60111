"""The policies by ``PolicySettings.name``, and the default one."""

from __future__ import annotations

from typing import Callable

from at2_tune.core.planner import PlannedSchedule
from at2_tune.core.policies import LeadersRoundRobin, Policy, no_prior, paper
from at2_tune.core.settings import PolicySettings

POLICIES: dict[str, Callable[[PolicySettings], Policy]] = {
    "planned": lambda s: PlannedSchedule(s.leaders, s.leaders_decay, s.objective),
    "leaders": lambda s: LeadersRoundRobin(s.leaders, s.leaders_decay),
    "paper": paper,
    "no_prior": no_prior,
}
"""Policy factories by ``PolicySettings.name``."""


def build_policy(settings: PolicySettings, n_prior_tasks: int) -> Policy:
    """The policy ``settings`` name (``"auto"``: ``planned`` with prior tasks, else
    ``no_prior``)."""
    name = settings.name
    if name == "auto":
        name = "planned" if n_prior_tasks else "no_prior"
    return POLICIES[name](settings)
