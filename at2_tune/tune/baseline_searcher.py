"""``TransferBaselineSearcher``: the model-free transfer baselines as a live Ray Tune searcher.

The baselines of ``at2-tune bench`` that pause and resume trials (``top3``) or train the prior's
favourites in turn (``portfolio``) need the same freeze-thaw machinery as AT2. This searcher is
:class:`~at2_tune.tune.searcher.AT2Searcher` with its decision core swapped: instead of the AT2
engine, a :class:`~at2_tune.core.schedules.ModelFreeCore` over one of the baselines' policies, so that
a baseline runs live exactly as it is replayed, with :class:`~at2_tune.tune.AT2Scheduler`::

    searcher = TransferBaselineSearcher("top3", prior="hyperrec")
    tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
             metric="val_top1", mode="max", num_samples=1000)

The prior's configurations are ordered as the bench's baselines and AT2's budget planner order
them (``PriorData.order_of``: the mean rank of each prior task's best value of a
configuration), and the portfolio is picked from the same best values, so on the same prior a
live baseline trains what the replayed one trains.
"""

from __future__ import annotations

from typing import Any

from at2_tune.core.schedules import ModelFreeCore, Portfolio, RoundRobin, greedy_portfolio
from at2_tune.errors import AT2Error
from at2_tune.tune.searcher import AT2Searcher

TOP_K = 3

BASELINES = ("top3", "portfolio")
"""``top3``: the prior's three best configurations trained in turn, one epoch each, paused in
between (round robin); ``portfolio``: Syne Tune's zero-shot transfer, the greedy portfolio of the
prior tasks, each configuration trained to its last epoch in that order."""


def baseline_policy(baseline: str, prior, candidates: list[dict[str, Any]]):
    """The model-free policy of ``baseline`` over ``candidates`` (indices into it) from
    ``prior`` (a ``PriorData`` whose configurations are among the candidates)."""
    if baseline == "top3":
        order = prior.order_of(candidates)
        return RoundRobin(order[0], ranking=order, k=TOP_K, decay=0.0)
    if baseline == "portfolio":
        ranking = greedy_portfolio(prior.best_values_on(candidates))
        return Portfolio(ranking[0], ranking=ranking)
    raise AT2Error(f"unknown transfer baseline {baseline!r}; choose from {', '.join(BASELINES)}")


class TransferBaselineSearcher(AT2Searcher):
    """:class:`AT2Searcher` deciding by a model-free transfer baseline (no model, no fit).

    Args:
        baseline: one of :data:`BASELINES`.
        **kwargs: as for :class:`AT2Searcher`; ``prior`` must hold prior tasks (a baseline that
            transfers needs something to transfer from); ``candidates`` default to the prior's
            configurations (the baselines only ever train those).
    """

    def __init__(self, baseline: str, **kwargs: Any) -> None:
        if baseline not in BASELINES:
            raise AT2Error(f"unknown transfer baseline {baseline!r}; choose from "
                           f"{', '.join(BASELINES)}")
        if kwargs.get("prior", "hyperrec") is None:
            raise AT2Error(f"the transfer baseline {baseline!r} needs a prior (the HyperRec "
                           "database or the folder of an `at2-tune prior import` database); "
                           "pass prior=... or use a method without transfer")
        super().__init__(**kwargs)
        self.baseline = baseline

    def _new_engine(self) -> ModelFreeCore:
        self._check_metric()
        inputs = self.setup.inputs(self._metric)
        prior = inputs.prior
        if not prior.n_tasks:
            raise AT2Error(f"the transfer baseline {self.baseline!r} needs prior tasks, but the "
                           f"prior {self.setup.prior!r} holds none")
        candidates = list(inputs.candidates) if inputs.candidates is not None \
            else list(prior.configs)
        policy = baseline_policy(self.baseline, prior, candidates)
        return ModelFreeCore(policy, candidates, prior.n_epochs)

    @property
    def engine(self) -> ModelFreeCore:
        """The decision core (built on first use; nothing to fit)."""
        if self.coordinator.engine is None:
            self.coordinator.attach(self._new_engine())
            self.offline_fit_outcome = "no model"
        return self.coordinator.engine

    def _construction_state(self) -> dict[str, Any]:
        return {**super()._construction_state(), "baseline": self.baseline}

    def _load_construction(self, saved: dict[str, Any]) -> None:
        super()._load_construction(saved)
        if saved.get("baseline") != getattr(self, "baseline", saved.get("baseline")):
            raise AT2Error(f"the saved state is of the baseline {saved.get('baseline')!r}, this "
                           f"searcher runs {self.baseline!r}; build it with the saved baseline")
        self.baseline = saved["baseline"]
