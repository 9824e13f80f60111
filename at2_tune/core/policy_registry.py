"""The policies by ``PolicySettings.name``, and the default one."""

from __future__ import annotations

from typing import Callable

from at2_tune.core.planner import PlannedSchedule
from at2_tune.core.policies import BudgetedFreezeThaw, LeadersRoundRobin, Policy, paper
from at2_tune.core.settings import PolicySettings

POLICIES: dict[str, Callable[[PolicySettings, int], Policy]] = {
    "planned": lambda s, seed: PlannedSchedule(s.leaders, s.leaders_decay, s.objective),
    "leaders": lambda s, seed: LeadersRoundRobin(s.leaders, s.leaders_decay),
    "paper": lambda s, seed: paper(s),
    "no_prior": lambda s, seed: BudgetedFreezeThaw(seed),
}
"""Policy factories by ``PolicySettings.name``, called with the settings and the run's seed."""


def build_policy(settings: PolicySettings, n_prior_tasks: int, seed: int = 0) -> Policy:
    """The policy ``settings`` name (``"auto"``: ``planned`` with prior tasks, else
    ``no_prior``), for a run seeded with ``seed``."""
    name = settings.name
    if name == "auto":
        name = "planned" if n_prior_tasks else "no_prior"
    return POLICIES[name](settings, seed)
