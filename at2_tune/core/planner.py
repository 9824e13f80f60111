"""The budget planner: how many configurations to train, and how deep, learned on the prior tasks.

Before the first trial the budget ``B`` (epochs over all trials) and the slots ``K`` are known.
:func:`plan_schedule` replays every schedule of a family (:data:`FAMILY`: the prior's top ``n``
in a round robin, the prior's top ``n`` each trained to its end in turn, successive halving from
the prior's order, a weighted round robin of the top 4, the prior's greedy portfolio each trained
to its end in turn) on each prior task in turn, as if it were
the new task with the other prior tasks as its prior, through the coordinator's K-slot simulator
(``at2_tune.core.simulation``) with budget ``B``; and it takes the schedule with the lowest mean
normalized regret over the tasks (a 10% trimmed mean; ties: the shorter simulated wall time, then
the family's order).

The regret is that of what the user keeps (:data:`OBJECTIVES`):

* ``"model"`` (the default): the best value observed in the budget, i.e. the model actually
  trained (Ray's ``get_best_result``);
* ``"configuration"`` (the AT2 paper's): the full-training value of the recommended
  configuration, for a user who trains it again to its end.

A prior task's curves may be cut (a tuning history's early-stopped trials): a cut curve is
continued past its last observed epoch by the typical gain of the prior's curves that were
trained to the end (:func:`completed`), and a task is replayed on the configurations it trained
only (the schedules go down the prior's order past the others); every schedule of the family is
replayed on such a prior as on a full grid. :class:`PlannedSchedule` is the policy that plans once
and then carries the plan out. No Ray imports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from at2_tune.core.coordinator import Coordinator
from at2_tune.core.policies import LeadersRoundRobin, RecommendingPolicy, Situation
from at2_tune.core.prior import best_values, prior_order
from at2_tune.core.schedules import (ModelFreeCore, Portfolio, RoundRobin, SuccessiveHalving,
                                     greedy_portfolio)
from at2_tune.core.settings import OBJECTIVES
from at2_tune.core.simulation import simulate
from at2_tune.errors import AT2Error

_KINDS = {"round_robin": "top{n} round robin", "in_turn": "top{n} in turn",
          "halving": "halving from top{n}", "weighted": "top{n} weighted",
          "portfolio": "portfolio of {n} in turn"}
PORTFOLIO_PICKS = 6
"""Configurations picked by the greedy portfolio; the prior's order follows them."""


@dataclass(frozen=True)
class Schedule:
    """A model-free way to spend the epochs over a ranking of configurations (best first).

    ``kind``: ``"round_robin"`` (the top ``n`` in turn, one epoch each), ``"in_turn"`` (the top
    ``n`` one after another, each to its last epoch; with ``K`` slots ``K`` at once),
    ``"halving"`` (successive halving from the top ``n``, rungs at 1, 3, 9... epochs, the last
    survivor trained on), ``"weighted"`` (the top ``n`` in turn, the one in place ``i`` owed
    the share ``(i + 1) ** -0.5`` of the epochs: the model-free form of the ``leaders`` policy)
    or ``"portfolio"`` (as ``"in_turn"``, over the greedy portfolio of the prior tasks, Syne
    Tune's zero-shot transfer: each pick the configuration that best complements the earlier
    ones, :func:`~at2_tune.core.schedules.greedy_portfolio`).
    """

    kind: str
    n: int

    def __post_init__(self) -> None:
        if self.kind not in _KINDS or not isinstance(self.n, int) or self.n < 1:
            raise AT2Error(f"schedule ({self.kind!r}, {self.n!r}): kind must be one of "
                           f"{', '.join(_KINDS)} and n an integer >= 1")

    @property
    def label(self) -> str:
        return _KINDS[self.kind].format(n=self.n)

    @property
    def ranking_name(self) -> str:
        """The ranking the schedule reads: ``"portfolio"`` or ``"prior"`` (:func:`prior_order`)."""
        return "portfolio" if self.kind == "portfolio" else "prior"

    def policy(self, ranking: Sequence[int], n_epochs: int):
        """The model-free policy (``at2_tune.core.schedules``) of this schedule over ``ranking``
        (candidate indices, best first; the one :attr:`ranking_name` names)."""
        ranking = [int(c) for c in ranking]
        first = ranking[0]
        if self.kind == "round_robin":
            return RoundRobin(first, ranking=ranking, k=self.n, decay=0.0)
        if self.kind == "weighted":
            return RoundRobin(first, ranking=ranking, k=self.n, decay=0.5)
        if self.kind in ("in_turn", "portfolio"):
            return Portfolio(first, ranking=ranking[: self.n])
        return SuccessiveHalving(first, start=ranking[: self.n], eta=3, n_epochs=n_epochs,
                                 train_survivor=True)

    def to_json(self) -> list:
        return [self.kind, self.n]


FAMILY = (*(Schedule("round_robin", n) for n in range(1, 7)),
          *(Schedule("in_turn", n) for n in (2, 3, 4)),
          Schedule("halving", 9), Schedule("halving", 27), Schedule("weighted", 4),
          Schedule("portfolio", 2), Schedule("portfolio", 4))
"""The schedules the planner chooses from (top1 round robin is the prior's best configuration
trained alone)."""

PAPER_DEFAULT = Schedule("weighted", 4)
"""What the planner keeps for the paper's objective unless the prior tasks show a schedule
clearly better (:func:`plan_schedule`): the model-free form of ``leaders``, the default for
that objective before the planner."""


@dataclass(frozen=True)
class ScheduleScore:
    """A schedule replayed on the prior tasks: the (trimmed) mean and the standard error of its
    normalized regret over the tasks, and its mean simulated wall time (time units of
    ``at2_tune.core.simulation.epoch_seconds``)."""

    schedule: Schedule
    regret: float
    stderr: float
    wall: float

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.schedule.label, "kind": self.schedule.kind, "n": self.schedule.n,
                "regret": self.regret, "stderr": self.stderr, "sim_wall": self.wall}


@dataclass(frozen=True)
class Plan:
    """The planner's choice for a budget and a number of slots, with every schedule's score
    (best first)."""

    budget: int
    concurrency: int
    objective: str
    n_tasks: int
    scores: tuple[ScheduleScore, ...]
    seconds: float

    @property
    def chosen(self) -> Schedule:
        return self.scores[0].schedule

    def to_json(self) -> dict[str, Any]:
        return {"budget": self.budget, "concurrency": self.concurrency,
                "objective": self.objective, "n_tasks": self.n_tasks,
                "chosen": self.chosen.label, "seconds": self.seconds,
                "scores": [s.to_json() for s in self.scores]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Plan":
        scores = tuple(ScheduleScore(Schedule(s["kind"], s["n"]), s["regret"], s["stderr"],
                                     s["sim_wall"]) for s in data["scores"])
        return cls(data["budget"], data["concurrency"], data["objective"], data["n_tasks"],
                   scores, data["seconds"])

    def describe(self, runners_up: int = 3) -> str:
        """One line: the chosen schedule, its simulated regret and wall time, the runners-up."""
        def part(score: ScheduleScore) -> str:
            return f"{score.schedule.label} {score.regret:.3f} (wall {score.wall:.0f})"

        others = ", ".join(part(s) for s in self.scores[1: 1 + runners_up])
        kept = self.scores[0].regret > min(s.regret for s in self.scores)
        return (f"plan for {self.budget} epochs on {self.concurrency} slot(s), objective "
                f"{self.objective}: {part(self.scores[0])} (normalized regret on "
                f"{self.n_tasks} prior tasks, planned in {self.seconds:.2f} s"
                f"{'; kept: no schedule is better by a paired standard error' if kept else ''}"
                f"); runners-up: {others}")


def rankings(best_values: np.ndarray) -> dict[str, list[int]]:
    """The orders schedules read, from the prior tasks' ``(T, C)`` best values (NaN: not
    observed): ``"prior"`` (:func:`prior_order`) and ``"portfolio"`` (the greedy portfolio's
    first :data:`PORTFOLIO_PICKS` picks, then the prior's order)."""
    prior = [int(c) for c in prior_order(best_values)]
    picks = [int(c) for c in greedy_portfolio(best_values, limit=PORTFOLIO_PICKS)]
    return {"prior": prior, "portfolio": picks + [c for c in prior if c not in set(picks)]}


def carried_forward(curves: np.ndarray) -> np.ndarray:
    """``(C, E)`` curves with every unobserved epoch (NaN) after an observed one set to the last
    observed value, and before the first observed one to the first; rows never observed stay
    NaN."""
    curves = np.asarray(curves, dtype=float)
    seen = ~np.isnan(curves)
    epochs = np.arange(curves.shape[1])
    last = np.maximum.accumulate(np.where(seen, epochs, -1), axis=1)
    first = np.argmax(seen, axis=1)[:, None]
    index = np.where(last >= 0, last, first)
    return np.take_along_axis(curves, index, axis=1)


def completed(curves: np.ndarray) -> np.ndarray:
    """``(T, C, E)`` prior curves with every cut curve continued: after its last observed epoch
    ``e`` a configuration gets its value there plus the median gain from ``e`` of the curves
    that the prior tasks trained to the last epoch (all tasks' together; cut curves stay
    carried forward where no task trained one to the end). Gaps inside a curve and epochs
    before its first observation are carried forward (:func:`carried_forward`); rows never
    observed stay NaN.

    A tuning history's early stopper cuts most curves after 1-3 epochs. Carried forward flat,
    they say that training deeper gains nothing, and the plan then spreads the epochs over
    many configurations where the new task, trained to the end, rewards depth. An ASHA history
    of 25 trials trains about one configuration to the end, so the gains are pooled over the
    tasks (measured on 8 ASHA histories per new task, docs/benchmarks.md)."""
    curves = np.asarray(curves, dtype=float)
    n_epochs = curves.shape[2]
    seen = ~np.isnan(curves)
    full = seen[:, :, -1]
    filled = carried_forward(curves.reshape(-1, n_epochs)).reshape(curves.shape)
    tasks, configs = np.nonzero(seen.any(axis=2) & ~full)  # the cut curves
    if not (full.any() and tasks.size):
        return filled
    pool = filled[full]  # the full curves, carried forward over their gaps
    lasts = n_epochs - 1 - np.argmax(seen[tasks, configs, ::-1], axis=1)
    for last in np.unique(lasts):  # one median gain per epoch a curve was cut at
        rows = lasts == last
        gain = np.median(pool[:, last + 1:] - pool[:, [last]], axis=0)
        filled[tasks[rows], configs[rows], last + 1:] = \
            filled[tasks[rows], configs[rows], last][:, None] + gain
    return filled


def replay_schedule(schedule: Schedule, curves: np.ndarray, ranking: Sequence[int], budget: int,
                    concurrency: int) -> tuple[float, int, float]:
    """Replay ``schedule`` over ``ranking`` on ``curves`` ``(C, E)`` (no NaN in the rows it
    trains) with ``budget`` epochs on ``concurrency`` slots. Returns the best value observed,
    the recommended configuration (the one that holds it) and the simulated wall time."""
    n_configs, n_epochs = curves.shape
    core = ModelFreeCore(schedule.policy(ranking, n_epochs), [{}] * n_configs, n_epochs)
    coordinator = Coordinator(core, budget_epochs=budget, max_concurrent=concurrency)
    wall = simulate(coordinator, curves, concurrency, seed=0)
    best = max(coordinator.trace, key=lambda row: row.value)
    return best.value, best.candidate, wall


def schedule_regrets(prior_curves: np.ndarray, budget: int, concurrency: int,
                     objective: str = "model", family: Sequence[Schedule] = FAMILY
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each schedule of ``family`` replayed on each prior task in turn (the other tasks its
    prior): normalized regrets and simulated wall times, ``(len(family), T')`` each, over the
    ``T'`` tasks that observed at least two configurations. ``prior_curves`` ``(T, C, E)``,
    higher is better, NaN where unobserved."""
    if objective not in OBJECTIVES:
        raise AT2Error(f"objective={objective!r} is not one of {', '.join(OBJECTIVES)}")
    curves = np.asarray(prior_curves, dtype=float)
    best = best_values(curves)  # the orders read what the prior tasks observed, as a new task's
    filled = completed(curves)
    regrets, walls = [], []
    for task in range(curves.shape[0]):
        observed = ~np.isnan(best[task])
        if observed.sum() < 2:
            continue
        task_curves = filled[task]
        task_finals = np.full(len(observed), np.nan)
        task_finals[observed] = task_curves[observed].max(axis=1)
        low, high = np.nanmin(task_finals), np.nanmax(task_finals)
        if high <= low:
            continue
        orders = {name: _trained_first(order, observed)
                  for name, order in rankings(np.delete(best, task, axis=0)).items()}
        row_regrets, row_walls = [], []
        for schedule in family:
            held, recommended, wall = replay_schedule(schedule, task_curves,
                                                      orders[schedule.ranking_name], budget,
                                                      concurrency)
            kept = held if objective == "model" else task_finals[recommended]
            row_regrets.append((high - kept) / (high - low))
            row_walls.append(wall)
        regrets.append(row_regrets)
        walls.append(row_walls)
    if not regrets:
        return np.zeros((len(family), 0)), np.zeros((len(family), 0))
    return np.array(regrets).T, np.array(walls).T


def _trained_first(order: Sequence[int], observed: np.ndarray) -> list[int]:
    """The configurations of ``order`` that ``observed`` marks, in that order, then the other
    marked ones (those only the replayed task trained), by index."""
    placed = set(order)
    return [c for c in order if observed[c]] + \
        [int(c) for c in np.flatnonzero(observed) if c not in placed]


TRIM = 0.1
"""Share of the prior tasks left out at each end of a schedule's regrets before averaging."""


def trimmed_mean(values: np.ndarray, trim: float = TRIM) -> np.ndarray:
    """``(S,)`` the mean of each row of ``values`` ``(S, T)`` without its ``floor(trim * T)``
    lowest and highest entries (the plain mean below ``1 / trim`` tasks). One prior task that
    one schedule suits exceptionally well would otherwise decide the plan for every new task
    (measured in docs/benchmarks.md: leave-one-task-out, the plain mean chose worse schedules
    on LCBench at 10 and 100 epochs)."""
    values = np.sort(np.asarray(values, dtype=float), axis=1)
    cut = int(trim * values.shape[1])
    return values[:, cut: values.shape[1] - cut].mean(axis=1)


def plan_schedule(prior_curves: np.ndarray, budget: int, concurrency: int = 1,
                  objective: str = "model", family: Sequence[Schedule] = FAMILY) -> Plan | None:
    """The schedule of ``family`` with the lowest mean normalized regret on the prior tasks
    (:func:`schedule_regrets`; a 10% trimmed mean, :func:`trimmed_mean`); ties: the shorter
    mean simulated wall time, then the family's order. ``None`` when fewer than two prior tasks
    can be replayed (one new task and one prior are the least a replay needs).

    A prior of tuning histories (cut curves, :func:`completed`) is planned for with the whole
    family. Successive halving was once left out there; on LCBench's 50 trained epochs it is the
    best fixed schedule on 4-16 ASHA histories at most budgets, and replaying it lowered the
    held regret's mean over the budgets by up to 0.016 on LCBench and raised it by at most
    0.006 on HyperRec (docs/benchmarks.md, the budget planner)."""
    if budget < 1 or concurrency < 1:
        raise AT2Error(f"budget={budget} and concurrency={concurrency} must be at least 1")
    started = time.perf_counter()
    curves = np.asarray(prior_curves, dtype=float)
    if curves.shape[0] < 2:
        return None
    regrets, walls = schedule_regrets(curves, budget, concurrency, objective, family)
    n_tasks = regrets.shape[1]
    if n_tasks == 0:
        return None
    mean, wall = trimmed_mean(regrets), walls.mean(axis=1)
    stderr = regrets.std(axis=1, ddof=1) / np.sqrt(n_tasks) if n_tasks > 1 else \
        np.zeros(len(family))
    scores = tuple(ScheduleScore(family[i], float(mean[i]), float(stderr[i]), float(wall[i]))
                   for i in ranked(regrets, walls, family, objective))
    return Plan(budget, concurrency, objective, n_tasks, scores, time.perf_counter() - started)


def ranked(regrets: np.ndarray, walls: np.ndarray, family: Sequence[Schedule],
           objective: str = "model") -> list[int]:
    """The schedules of ``family`` (indices), best first, from their regrets and simulated wall
    times on the prior tasks, ``(len(family), T)`` each (:func:`schedule_regrets`): by the
    trimmed mean regret (:func:`trimmed_mean`), then the mean wall time, then the family's
    order; for the paper's objective :data:`PAPER_DEFAULT` stays first unless clearly beaten
    (:func:`kept_unless_clearly_beaten`). The choice rule of :func:`plan_schedule`, apart so
    that ``experiments.planner_choice`` measures it on stored regrets."""
    family = list(family)
    mean, wall = trimmed_mean(regrets), np.asarray(walls, dtype=float).mean(axis=1)
    order = sorted(range(len(family)), key=lambda i: (round(float(mean[i]), 9), wall[i], i))
    if objective == "configuration" and PAPER_DEFAULT in family:
        order = kept_unless_clearly_beaten(order, regrets, family.index(PAPER_DEFAULT))
    return order


def kept_unless_clearly_beaten(order: list[int], regrets: np.ndarray, default: int) -> list[int]:
    """``order`` (schedule indices, best first) with ``default`` first unless the best schedule's
    regrets ``(S, T)`` are lower than the default's by more than one standard error of their
    paired difference over the tasks.

    For the paper's objective the full-training value of the recommended configuration differs
    little between schedules, and the lowest mean over 26 or 34 prior tasks is mostly noise:
    taking it lost to the default by 1.3 (HyperRec) and 4.4 (LCBench) ranks at 10 epochs
    (leave-one-task-out, docs/benchmarks.md); keeping the default unless it is clearly beaten
    does not."""
    best = order[0]
    if best == default:
        return order
    gain = regrets[default] - regrets[best]
    if len(gain) > 1 and gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain)):
        return order
    return [default] + [i for i in order if i != default]


class PlannedSchedule(RecommendingPolicy):
    """Plans how to spend the budget on the prior tasks (:func:`plan_schedule`), then carries
    the chosen schedule out over the prior's order of the candidates.

    Until :meth:`plan` is called (the coordinator calls it before its first decision when the
    budget is known), when the prior cannot be replayed (fewer than two prior tasks), and once
    the schedule is done with budget left, it decides as ``leaders`` does
    (:class:`~at2_tune.core.policies.LeadersRoundRobin`).
    Recommends the best value observed (before any: the prior's favourite).
    """

    name = "planned"
    decides_on = "transfer"
    residual_correction = True

    def __init__(self, leaders: int = 4, decay: float = 0.5, objective: str = "model") -> None:
        if objective not in OBJECTIVES:
            raise AT2Error(f"objective={objective!r} is not one of {', '.join(OBJECTIVES)}")
        self.objective = objective
        self.unplanned = LeadersRoundRobin(leaders, decay)
        self.current_plan: Plan | None = None
        self.planned_for: tuple[int, int] | None = None
        self.ranking: list[int] = []
        self.n_epochs: int | None = None
        self._schedule = None
        self._observed: list[tuple[int, int, float]] = []

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        self._observed.append((int(candidate), int(epoch), float(value)))
        self.unplanned.observe(candidate, epoch, value)
        if self._schedule is not None:
            self._schedule.observe(candidate, epoch, value)

    def plan(self, prior_curves: np.ndarray, candidate_cells: Sequence[int | None], budget: int,
             concurrency: int) -> Plan | None:
        """Choose the schedule for ``budget`` epochs on ``concurrency`` slots from the prior's
        ``(T, C, E)`` curves; ``candidate_cells[i]`` is candidate ``i``'s column of the prior's
        grid (``None``: off the grid, never in the schedule). Once per budget and slots."""
        if self.planned_for == (budget, concurrency):
            return self.current_plan
        self.planned_for = (budget, concurrency)
        self.current_plan = plan_schedule(prior_curves, budget, concurrency, self.objective)
        if self.current_plan is not None:
            order = rankings(best_values(prior_curves))[self.current_plan.chosen.ranking_name]
            column_of = {cell: c for c, cell in enumerate(candidate_cells) if cell is not None}
            self.ranking = [column_of[cell] for cell in order if cell in column_of]
        self.n_epochs = int(prior_curves.shape[2])
        self._start_schedule()
        return self.current_plan

    def _start_schedule(self) -> None:
        self._schedule = None
        if self.current_plan is not None and self.ranking:
            self._schedule = self.current_plan.chosen.policy(self.ranking, self.n_epochs)
            for observation in self._observed:
                self._schedule.observe(*observation)

    def _planned_order(self, situation: Situation) -> list[int]:
        """The schedule's order; empty without a plan or once the schedule is done."""
        return [] if self._schedule is None else self._schedule.order(None, situation)

    def posterior_scope(self, situation: Situation) -> np.ndarray | None:
        if self._planned_order(situation):
            return np.zeros(0, dtype=np.int64)  # the schedule reads no posterior
        return self.unplanned.posterior_scope(situation)

    def order(self, posterior, situation: Situation) -> list[int]:
        """The schedule's order while it has epochs to train; after it (a plan can end under
        the budget: its configurations reached their last epoch), as ``leaders`` orders, so
        the budget is spent (more epochs never lower the best value observed)."""
        return self._planned_order(situation) or self.unplanned.order(posterior, situation)

    def recommend(self, posterior, eligible: Sequence[int]) -> int:
        if self._schedule is None:
            return self.unplanned.recommend(posterior, eligible)
        return self._schedule.recommend(None, eligible)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "objective": self.objective,
                "planned_for": None if self.planned_for is None else list(self.planned_for),
                "plan": None if self.current_plan is None else self.current_plan.to_json(),
                "ranking": list(self.ranking), "n_epochs": self.n_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("objective", self.objective) != self.objective:
            raise AT2Error(f"the saved state plans for objective {state['objective']!r}, this "
                           f"engine's is {self.objective!r}; build it with the saved settings")
        self.planned_for = None if state["planned_for"] is None else tuple(state["planned_for"])
        self.current_plan = None if state["plan"] is None else Plan.from_json(state["plan"])
        self.ranking = [int(c) for c in state["ranking"]]
        self.n_epochs = state["n_epochs"]
        self._start_schedule()

