"""The transfer posterior: what the prior tasks say about the new task's curves.

A candidate's mean curve is the prior tasks' Gaussian copula average at its grid configuration
(``prior.copula_average``: each task's values become the normal quantiles of their ranks within
the task, the mean score is mapped back through the pooled prior values' quantiles; Salinas et
al. 2020), mapped onto the new task's scale by the output transform. Its standard deviation is
the prior tasks' spread around their average at each cell, widened by the error scale measured
when each prior task plays the new task (``at2_tune.core.spread``).

The multi-task GP enters only where the prior tasks are silent:

* a candidate no prior task observed (off the grid, or a grid configuration the prior never
  ran) gets the GP's curves of the prior tasks there (``AT2Surrogate.prior_task_means``),
  averaged the same way (``prior.copula_imputed_average``), and its variance there is the
  prior tasks' spread plus the GP's uncertainty of that guess (``prior_task_variance``: the
  prior tasks' posterior variance at the configuration and the observation noise). Without it
  the 90% intervals of such configurations covered 12-48% of their true best values on
  8-history priors (issue 38, docs/benchmarks.md);
* with a single prior task, or where no cell was observed by two (disjoint histories), there is
  no spread to measure: the std is the GP's, its std of the new task and its predictive
  variance of the prior tasks' curves together.

Every std then carries the uncertainty of the map onto the new task's scale
(``OutputTransform.predictive_std``).

So with the full HyperRec or LCBench grid as prior and its configurations as candidates the GP
is neither fitted nor conditioned (:meth:`TransferPosterior.needs_gp` is False).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from at2_tune.core.models import Evidence, GPCurveModel, _Conditioned
from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.prior import copula_average, copula_imputed_average
from at2_tune.core.spread import pooled_spread, spread_error_scale, spread_over_tasks
from at2_tune.core.transform import OutputTransform


class TransferPosterior(_Conditioned):
    """The prior tasks' copula average and spread on the new task's scale (module docstring).

    Args:
        transform: the output transform: the prior tasks on the model's scale
            (``transform.prior``) and the map to the new task's scale, fitted here on the
            new task's observations.
        gp: the multi-task GP model, asked only for what the prior tasks did not observe (and
            conditioned only then).
    """

    def __init__(self, transform: OutputTransform, gp: GPCurveModel) -> None:
        self.transform = transform
        self.prior = transform.prior
        """The prior tasks on the model's scale."""
        self.gp = gp
        self._covers: tuple[tuple, bool] | None = None

    @functools.cached_property
    def grid_average(self) -> tuple[np.ndarray, np.ndarray]:
        """``(C, E)`` the prior tasks' copula average of every grid cell and ``(C, E)`` how many
        tasks observed it; it depends on the prior alone, so it is computed once."""
        return copula_average(self.prior.curves, self.prior.observed)

    @functools.cached_property
    def spread(self) -> tuple[np.ndarray, float, np.ndarray]:
        """``(C, E)`` spread of the prior tasks around their average (NaN where fewer than 2
        observed a cell), the error scale that widens it, and the ``(E,)`` pooled spread of each
        epoch; computed once."""
        curves, observed = self.prior.curves, self.prior.observed
        return (spread_over_tasks(curves, observed), spread_error_scale(curves, observed),
                pooled_spread(curves, observed))

    def needs_gp(self, cells: Sequence[int | None]) -> bool:
        """Whether the GP takes part in the posterior of candidates on these grid ``cells``: a
        candidate off the grid or unobserved by the prior, fewer than 2 prior tasks, or a GP
        whose hyperparameters move online."""
        key = tuple(cells)
        if self._covers is None or self._covers[0] != key:
            self._covers = (key, self._covered(cells))
        return not self._covers[1]

    def _covered(self, cells: Sequence[int | None]) -> bool:
        if self.prior.n_tasks < 2 or self.gp.moves_online:
            return False
        if not len(cells):
            return True  # no candidate's posterior is read
        if any(c is None for c in cells):
            return False
        _, count = self.grid_average
        if (count[np.array(cells, dtype=np.int64)] == 0).any():
            return False
        shape = (len(cells), self.prior.n_epochs)
        posterior = self._transfer(CurvePosterior.uninformed(*shape), cells, None)
        return bool(np.isfinite(posterior.mean).all() and np.isfinite(posterior.std).all())

    def condition(self, evidence: Evidence, cells: Sequence[int | None] | None = None) -> None:
        """Condition the GP when it takes part in the posterior of the candidates on ``cells``
        (:meth:`needs_gp`; default: every candidate's), else fit only the new task's scale;
        then compute the posterior. Without the GP, a candidate the prior tasks never observed
        has a NaN mean: pass the cells of every candidate whose posterior is read."""
        self._update(evidence, self.gp.condition, cells)

    def restore(self, evidence: Evidence, cells: Sequence[int | None] | None = None) -> None:
        self._update(evidence, self.gp.restore, cells)

    def _update(self, evidence: Evidence, gp_step, cells) -> None:
        if self.needs_gp(evidence.cells if cells is None else cells):
            gp_step(evidence)
            base, imputing = self.gp.posterior(), evidence
        else:
            self.gp.fit_transform(evidence)
            base = CurvePosterior.uninformed(len(evidence.cells), self.prior.n_epochs)
            imputing = None  # the GP is not fitted: nothing the prior missed is imputed
        self._posterior = self._transfer(base, evidence.cells, imputing)

    def _transfer(self, base: CurvePosterior, cells: Sequence[int | None],
                  evidence: Evidence | None) -> CurvePosterior:
        """``base`` (the GP's posterior, or an uninformed one) with every mean replaced by the
        prior tasks' average and every std by their spread where they have one."""
        if not self.prior.n_tasks:
            return base
        n_candidates, n_epochs = base.mean.shape
        average = np.full((n_candidates, n_epochs), np.nan)
        grid = [(row, cell) for row, cell in enumerate(cells) if cell is not None]
        rows, grid_cells = (np.array(column, dtype=np.int64) for column in zip(*grid)) if grid \
            else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if grid:
            grid_average, count = self.grid_average
            average[rows] = np.where(count[grid_cells] > 0, grid_average[grid_cells], np.nan)
        unobserved = np.isnan(average)
        if unobserved.any() and evidence is not None:
            per_task = self.gp.prior_task_means(evidence.encodings)  # (T, n, E)
            imputed = copula_imputed_average(per_task, self.prior.curves, self.prior.observed)
            average = np.where(unobserved, imputed, average)
        deviation, error_scale, pooled = self.spread
        spread = np.broadcast_to(np.where(pooled > 0, pooled, np.nan),
                                 (n_candidates, n_epochs)).copy()
        spread[rows] = np.where(np.isnan(deviation[grid_cells]), spread[rows],
                                deviation[grid_cells])
        unmeasured = np.isnan(spread)  # 1 prior task, or no cell observed by two
        transform = self.transform
        # where the prior measured no spread: the GP's std of the new task
        model_std = np.where(unmeasured, base.std / abs(transform.target.scale),
                             error_scale * spread)
        if evidence is not None:  # the GP is conditioned: add its uncertainty of the prior tasks
            guess = self._prior_task_variance(evidence, unobserved | unmeasured)
            imputed_variance = np.where(unobserved, guess, 0.0)  # the guess across configurations
            model_std = np.where(unmeasured, np.hypot(model_std, np.sqrt(guess)),
                                 np.hypot(model_std, np.sqrt(imputed_variance)))
        std = transform.predictive_std(average, model_std)
        return CurvePosterior(transform.mean_from_model(average), std)

    def _prior_task_variance(self, evidence: Evidence, needed: np.ndarray) -> np.ndarray:
        """``(n, E)`` the GP's predictive variance of the prior tasks' curves
        (``AT2Surrogate.prior_task_variance``) on the candidates with a ``needed`` cell, 0
        elsewhere: one call, on the candidates' cached kernel.

        Where the prior tasks did not train a cell it is the uncertainty of the guess; where
        they measured no spread, it joins the GP's new-task std, which alone narrowed as the new
        task's observations arrived, faster than its mean improved (with 8 disjoint histories
        the 90% intervals of the untrained configurations covered 0.27-0.39 of their best
        values after 10-25 observations on HyperRec, 0.61-0.62 on LCBench; 0.67-0.78 and
        0.89-0.96 with it, docs/benchmarks.md)."""
        variance = np.zeros(needed.shape)
        rows = np.flatnonzero(needed.any(axis=1))
        if rows.size:
            variance[rows] = self.gp.prior_task_variance(evidence.encodings, rows)
        return variance
