"""The tuners ``at2-tune tune --method`` runs live, side by side on the same trainable.

Every method trains the same ``trainers/`` ResNet trainable on the same dataset, with the same
epoch budget, concurrency, resources and storage, through ``tune.Tuner``; only the searcher and
the scheduler differ (the settings of ``at2-tune bench``, :mod:`at2_tune.bench.methods`):

- ``at2``: :class:`~at2_tune.tune.AT2Searcher` + :class:`~at2_tune.tune.AT2Scheduler`
  (freeze-thaw: trials pause and resume epoch by epoch).
- ``top3``, ``portfolio``: model-free transfer baselines from the same prior, through the same
  freeze-thaw adapters (:class:`~at2_tune.tune.baseline_searcher.TransferBaselineSearcher`).
- ``asha``, ``random``, ``bohb``, ``optuna``, ``optuna-warm``: Ray Tune's own tuners over the
  HyperRec space's Ray form (``HYPERREC_SPACE.to_param_space()``), stopped after the budget by
  :class:`~at2_tune.tune.budget.EpochBudgetStopper`. ``optuna-warm`` starts from the prior's
  five best configurations.
"""

from __future__ import annotations

from typing import Any

from at2_tune.errors import AT2Error

COORDINATED = ("at2", "top3", "portfolio")
"""Methods whose decisions the freeze-thaw coordinator carries out (AT2Scheduler)."""
RAY = ("asha", "random", "bohb", "optuna", "optuna-warm")
"""Ray Tune's own searchers and schedulers."""
METHODS = ("at2", "asha", "random", "bohb", "optuna", "optuna-warm", "top3", "portfolio")
USES_PRIOR = ("at2", "optuna-warm", "top3", "portfolio")
"""Methods that read ``--prior`` (the others only take its epochs per trial)."""


def check_method(method: str, prior: str) -> None:
    """A clear error for an unknown method, a transfer method without a prior, or a method
    whose library is not installed."""
    if method == "zero-shot":
        raise AT2Error("--method zero-shot is now called portfolio (Syne Tune's greedy "
                       "portfolio of the prior, each configuration trained to its end in turn); "
                       "in at2-tune bench zero-shot is the prior's best configuration, "
                       "untrained. Use --method portfolio")
    if method not in METHODS:
        raise AT2Error(f"--method {method!r} is not a method of at2-tune tune; choose from "
                       f"{', '.join(METHODS)}")
    if method in USES_PRIOR and method != "at2" and prior == "none":
        raise AT2Error(f"--method {method} transfers from a prior, but --prior is none; use "
                       "--prior hyperrec (or the folder of an `at2-tune prior import` database), "
                       "or a method without transfer (asha, random, bohb, optuna)")
    if method in RAY:
        from at2_tune.bench.methods import check_available

        check_available([method])


def prior_order(plan, data_dir: str | None = None) -> list[int]:
    """Indices of ``plan.candidates`` the prior trained, best first (``PriorData.order_of``)."""
    return prior_data(plan, data_dir).order_of(list(plan.candidates))


def prior_data(plan, data_dir: str | None = None):
    """The plan's prior as ``PriorData`` (the HyperRec database: all tasks, seed profile 0, as
    AT2Searcher reads it)."""
    from at2_tune.core.prior import PriorData

    if isinstance(plan.prior, PriorData):
        return plan.prior
    if plan.prior == "hyperrec":
        from at2_tune.databases import load_database

        db = load_database("hyperrec", data_dir)
        return PriorData.from_database(db, db.tasks, seed_profile=0)
    raise AT2Error("this method needs a prior; --prior is none")


def ray_search(method: str, plan, seed: int, data_dir: str | None = None) -> tuple[Any, Any]:
    """``(search_alg, scheduler)`` of a Ray method for trials of ``plan.epochs`` epochs: the
    bench's settings (ASHA and HyperBand over the result field ``epoch``, which the trainers
    report, reduction factor 3, grace period 1)."""
    from at2_tune.bench.methods import WARM_START_POINTS, ray_tuner

    warm = []
    if method == "optuna-warm":
        warm = [plan.space.to_ray_sample(plan.candidates[i])
                for i in prior_order(plan, data_dir)[:WARM_START_POINTS]]
    return ray_tuner(method, plan.epochs, seed, warm)


def settings_of(method: str, plan, concurrency: int) -> dict[str, Any]:
    """What ``summary.json`` records of the method's settings."""
    if method in RAY:
        from at2_tune.bench.methods import settings_of as ray_settings

        settings = ray_settings(method, plan.epochs, concurrency)
        settings["space"] = "HYPERREC_SPACE.to_param_space()"
        return settings
    if method == "at2":
        return {"searcher": "AT2Searcher", "scheduler": "AT2Scheduler"}
    return {"searcher": f"TransferBaselineSearcher({method!r})", "scheduler": "AT2Scheduler"}
