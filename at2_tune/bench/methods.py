"""The methods of ``at2-tune bench``: names, kinds, and the Ray Tune search/scheduler pairs.

Three kinds, all on the same replay tasks and the same budget in epochs:

- AT2 (``at2``, ``at2-no-transfer``): ``AT2Searcher`` + ``AT2Scheduler`` through Ray Tune,
  choosing among the database's configurations.
- Ray Tune's own tuners (``random``, ``asha``, ``hyperband``, ``bohb``, ``optuna``,
  ``optuna-warm``) through Ray Tune: they search the database's native space
  (``space.to_param_space()``) and each sample is trained as the nearest database
  configuration (:class:`search_spaces.nearest.NearestConfig`), the 1-nearest-neighbour
  lookup Syne Tune's blackbox repository uses for tabulated benchmarks. So the model-based
  searchers keep the structure of the space (a choice over 100 ids would make TPE and BOHB's
  KDE blind to which configurations are alike), and random search samples the same space.
- Model-free transfer baselines (``zero-shot``, ``top3``, ``top5``, ``top4-weighted``,
  ``transfer-sh``, ``portfolio``: Syne Tune's zero-shot transfer) in process, replayed by the
  coordinator's simulator on the same K slots: they only choose among the prior's
  configurations and need no Tune machinery.

Importing this module imports neither Ray nor the optional searchers' libraries.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from at2_tune.bench import baselines
from at2_tune.errors import AT2Error

AT2 = ("at2", "at2-no-transfer")
RAY = ("random", "asha", "hyperband", "bohb", "optuna", "optuna-warm")
MODEL_FREE: dict[str, Callable[..., baselines.BaselineRun]] = {
    "zero-shot": baselines.BY_NAME["zero-shot"],
    "top3": baselines.BY_NAME["top3"],
    "top5": baselines.BY_NAME["top5"],
    "transfer-sh": baselines.BY_NAME["transfer-sh"],
    "top4-weighted": baselines.BY_NAME["top4-weighted"],
    "portfolio": baselines.BY_NAME["portfolio"],
}
METHODS = (*AT2, *RAY, *MODEL_FREE)
"""Every method, in the order of the tables."""
WITHOUT_PRIOR = ("at2-no-transfer", "random", "asha", "hyperband", "bohb", "optuna")
"""Methods that do not use the prior tasks."""
DETERMINISTIC = tuple(MODEL_FREE)
"""Methods that run once per case (the others run ``--repeats`` seeds)."""
WARM_START_POINTS = 5
"""``optuna-warm`` starts from the prior's best configurations by average rank, this many."""
REDUCTION_FACTOR = 3
GRACE_PERIOD = 1
_EXTRA_HINT = "install the bench extra: pip install 'at2-tune[bench]'"


def check_methods(names: Sequence[str]) -> list[str]:
    """The method names, validated (lower case, known, each once)."""
    chosen = []
    for name in names:
        name = name.strip().lower()
        if name not in METHODS:
            raise AT2Error(f"unknown bench method {name!r}; choose from {', '.join(METHODS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise AT2Error(f"no bench method given; choose from {', '.join(METHODS)}")
    return chosen


def check_available(names: Sequence[str]) -> None:
    """Raise a clear error if a chosen method's library is not installed."""
    needs = {"bohb": ("hpbandster", "ConfigSpace"), "optuna": ("optuna",),
             "optuna-warm": ("optuna",)}
    import importlib.util

    for name in names:
        missing = [m for m in needs.get(name, ()) if importlib.util.find_spec(m) is None]
        if missing:
            raise AT2Error(f"bench method {name!r} needs {', '.join(missing)}, which is not "
                           f"installed; {_EXTRA_HINT}, or leave {name!r} out of --methods")


def ray_tuner(method: str, max_t: int, seed: int, warm_points: Sequence[dict] = ()
              ) -> tuple[Any, Any]:
    """``(search_alg, scheduler)`` of a Ray method for trials of at most ``max_t`` epochs
    (result field ``epoch``), seeded with ``seed``; ``warm_points`` for ``optuna-warm``."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if method not in RAY:
        raise ValueError(f"{method!r} is not a Ray method ({', '.join(RAY)})")
    check_available([method])
    asha = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=GRACE_PERIOD,
                         reduction_factor=REDUCTION_FACTOR)
    if method == "random":
        return BasicVariantGenerator(random_state=seed), FIFOScheduler()
    if method == "asha":
        return BasicVariantGenerator(random_state=seed), asha
    if method == "hyperband":
        return (BasicVariantGenerator(random_state=seed),
                HyperBandScheduler(time_attr="epoch", max_t=max_t,
                                   reduction_factor=REDUCTION_FACTOR))
    if method == "bohb":
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        return (TuneBOHB(seed=seed),
                HyperBandForBOHB(time_attr="epoch", max_t=max_t,
                                 reduction_factor=REDUCTION_FACTOR))
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points = list(warm_points) if method == "optuna-warm" else None
    return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed),
                        points_to_evaluate=points), asha


def settings_of(method: str, max_t: int, concurrency: int) -> dict[str, Any]:
    """What a run document records as the method's settings."""
    if method in RAY:
        scheduler = {"random": "FIFO", "hyperband": "HyperBand", "bohb": "HyperBandForBOHB"}
        return {"searcher": {"bohb": "TuneBOHB", "optuna": "OptunaSearch(TPE)",
                             "optuna-warm": "OptunaSearch(TPE)"}.get(method, "random"),
                "scheduler": scheduler.get(method, "ASHA"), "time_attr": "epoch",
                "max_t": max_t, "grace_period": GRACE_PERIOD,
                "reduction_factor": REDUCTION_FACTOR, "concurrency": concurrency,
                "space": "native, snapped to the nearest database configuration",
                "warm_start_points": WARM_START_POINTS if method == "optuna-warm" else 0}
    return {}
