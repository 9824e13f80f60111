"""The output transform: every value the surrogate sees passes through here, and back.

Three steps, in this order:

1. **Warp** (``output_warp="log_error"``, which ``"auto"`` picks when every prior value lies in
   [0, 1], see :func:`resolve_output_warp`): a value ``v`` in [0, 1] (an accuracy) becomes
   ``-log(1 + eps - v)``, its log error. Tuning is decided among the best configurations, whose
   accuracies differ by a few points (0.80 vs 0.84); on the raw scale those differences are
   smaller than the spread of the many poor configurations and of early epochs, so a GP with one
   noise level smooths them away. The log error stretches the top of the scale (0.80 -> 1.61,
   0.84 -> 1.83) and compresses the bottom. It is fixed and monotone, so it applies to a new
   task's values as they come, with no data about that task.
2. **Prior standardization**: each prior task's (warped) values get the prior tasks' average
   mean and spread (LCBench tasks sit near 0.99 or near 0.6; otherwise the widest tasks
   dominate what transfers).
3. **Target map**: the new task can sit anywhere (HyperRec's SCENE15 runs between 0.98 and
   0.99), so its warped values are mapped onto the prior scale by an affine fit on matched cells
   (:func:`at2_tune.core.target_scale.fit_affine_scale`). Under ``"standardize"`` (a loss, a
   reward: values with no known bounds), when no cell is matched (no prior task, or a prior
   that never ran the new task's configurations) the new task's own mean and spread are mapped
   onto the prior's (onto 0 and 1 without a prior), so any scale reaches the model as a
   standardized one.

Posteriors are returned on the new task's *warped* scale (step 3 undone): decisions only
compare values, and the warp is monotone; :meth:`OutputTransform.unwarp` maps means back.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from at2_tune.core.prior import PriorData, mean_over_tasks
from at2_tune.core.target_scale import AffineScale, fit_affine_scale
from at2_tune.errors import AT2Error

LOG_ERROR_EPS = 1e-3
"""``eps`` of the log-error warp (keeps an accuracy of exactly 1 finite)."""

WARPS = ("auto", "log_error", "standardize", "none")
"""The values of ``ModelSettings.output_warp``."""


def resolve_output_warp(warp: str, prior: PriorData) -> str:
    """The concrete warp of ``warp``: ``"auto"`` is ``"log_error"`` when there are prior tasks
    and every value they observed lies in [0, 1] (accuracies: HyperRec, LCBench), else
    ``"standardize"`` (needs no bounds); the others are returned as they are.

    The Ray searcher resolves ``"auto"`` before this, from the metric and mode it tunes
    (``AT2Searcher``: a ``mode="min"`` metric is never a fraction to maximize)."""
    if warp not in WARPS:
        raise AT2Error(f"output_warp={warp!r} is not one of {', '.join(map(repr, WARPS))}")
    if warp != "auto":
        return warp
    observed = prior.curves[prior.observed] if prior.n_tasks else np.zeros(0)
    fractions = observed.size > 0 and bool(((observed >= 0.0) & (observed <= 1.0)).all())
    return "log_error" if fractions else "standardize"


class OutputTransform:
    """Owns the output warp, the prior's standardization and the new task's affine map.

    Args:
        prior: the prior tasks' curves on their own scales (NaN where unobserved: NaN passes
            through the warp and the standardization).
        standardize_prior: give every prior task the same mean and spread.
        scale_target: fit the new task's affine map (identity otherwise).
        warp: ``"auto"`` (see :func:`resolve_output_warp`), ``"log_error"`` (values must then
            lie in [0, 1]), ``"standardize"`` (no warp; the new task's own mean and spread set
            its map where no cell is matched) or ``"none"`` (no warp).
    """

    def __init__(self, prior: PriorData, standardize_prior: bool, scale_target: bool,
                 warp: str = "none") -> None:
        self.warp_name = resolve_output_warp(warp, prior)
        warped = dataclasses.replace(prior, curves=self.warp(prior.curves, "prior task")) \
            if prior.n_tasks else prior
        self.prior = warped.standardized() if standardize_prior else warped
        self.scale_target = scale_target and prior.n_tasks > 0
        self.target = AffineScale()
        self.target_known = False
        """Whether :attr:`target` was fitted on the new task's values (matched cells, or under
        ``"standardize"`` its own mean and spread); before, it is the identity."""
        self.levels = _relative_levels(warped) if standardize_prior and prior.n_tasks >= 2 \
            else None
        """``(T,)`` levels and ``(T,)`` spreads relative to their mean, of the prior tasks
        before the standardization (``PriorData.task_levels``), for :meth:`predictive_std`."""

    def warp(self, values: np.ndarray, what: str = "observed") -> np.ndarray:
        """Step 1 on ``values`` (any shape); NaN (an unobserved prior cell) stays NaN."""
        values = np.asarray(values, dtype=float)
        if self.warp_name != "log_error":
            return values
        outside = (values < 0.0) | (values > 1.0)  # False at NaN
        if outside.any():
            bad = float(values[outside].flat[0])
            raise AT2Error(f"{what} value {bad!r} is outside [0, 1], but output_warp='log_error' "
                           "needs accuracies in [0, 1]; report accuracy as a fraction, or use "
                           "AT2Settings(ModelSettings(output_warp='standardize')) for other metrics")
        return -np.log1p(LOG_ERROR_EPS - values)

    def unwarp(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`warp`."""
        values = np.asarray(values, dtype=float)
        return values if self.warp_name != "log_error" else 1.0 + LOG_ERROR_EPS - np.exp(-values)

    def fit_target(self, cells: np.ndarray, epochs: np.ndarray, values: np.ndarray,
                   all_values: np.ndarray | None = None) -> None:
        """Fit the new task's map from its raw values at grid ``cells`` (config indices) and
        1-based ``epochs`` (``(n,)`` each): least squares on the prior tasks' mean at those
        cells (over the tasks that observed each cell; a cell no prior task observed is left
        out), shrunk towards scale 1.

        Under ``"standardize"``, ``all_values`` (every observation of the new task, ``(m,)``)
        sets the map when no cell is matched: their mean and spread go onto the prior's."""
        matched = np.zeros(0, bool)
        if self.scale_target and len(values):
            at_cells = self.prior.curves[:, np.asarray(cells), np.asarray(epochs) - 1]  # (T, n)
            reference, count = mean_over_tasks(at_cells, ~np.isnan(at_cells))
            matched = count > 0
        self.target_known = True
        if matched.any():
            self.target = fit_affine_scale(self.warp(np.asarray(values)[matched]),
                                           reference[matched], float(np.nanvar(self.prior.curves)))
        elif self.warp_name == "standardize" and all_values is not None and len(all_values):
            self.target = self._standardizing_map(np.asarray(all_values, dtype=float))
        else:
            self.target = AffineScale()  # nothing to fit: the identity
            self.target_known = False

    def _standardizing_map(self, values: np.ndarray) -> AffineScale:
        """The map that puts ``values``' mean and spread on the prior's pooled ones (0 and 1
        without prior tasks); with one value (no spread yet) only the level moves."""
        observed = self.prior.curves[self.prior.observed] if self.prior.n_tasks else np.zeros(0)
        level, spread = (float(observed.mean()), float(observed.std())) if observed.size \
            else (0.0, 1.0)
        own = float(values.std())
        scale = own / spread if own > 0 and spread > 0 else 1.0
        return AffineScale(float(values.mean()) - scale * level, scale)

    def target_to_model(self, values: np.ndarray) -> np.ndarray:
        """Raw values of the new task -> the model's scale."""
        return self.target.to_model(self.warp(values))

    def mean_from_model(self, mean: np.ndarray) -> np.ndarray:
        """The model's scale -> the new task's warped scale."""
        return self.target.mean_from_model(mean)

    def std_from_model(self, std: np.ndarray) -> np.ndarray:
        return self.target.std_from_model(std)

    def predictive_std(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The std on the new task's warped scale of a value whose model-scale posterior is
        ``(mean, std)`` (same shapes), with the uncertainty of the map onto that scale.

        Once the map is fitted (:attr:`target_known`) it is :meth:`std_from_model`'s with the
        fitted map's own uncertainty at ``mean`` (``AffineScale.map_variance``). Before,
        the map is the identity, and the model's scale is the prior tasks' average level and
        spread (the prior standardization): the new task's level and spread are unknown, so
        the value is ``m + r (f - mean(m))`` with ``(m, r)`` the level and relative spread of a
        task drawn like the prior tasks (:attr:`levels`) and ``f`` the model's value, whose
        variance is ``Var(m + r (mean - mean(m))) + E[r^2] std^2``, the first term measured on
        the ``T`` prior tasks and widened by ``(T + 1) / (T - 1)`` (the unbiased variance of a
        new draw: with 2 prior tasks, 3 times their mean square). The mean is unchanged
        (``E[r] = 1``). Without it, the 90% intervals before the first observation covered
        0.35-0.65 of the untrained configurations' best values on HyperRec histories while
        the new task's level was off by up to 3 model units (docs/benchmarks.md)."""
        if self.target_known:
            return np.sqrt(self.std_from_model(std) ** 2 + self.target.map_variance(mean))
        if self.levels is None:
            return np.abs(self.std_from_model(std))
        levels, spreads = self.levels
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        shift = (mean - levels.mean())[..., None]
        n_tasks = len(levels)
        spread = np.mean((levels - levels.mean() + (spreads - 1.0) * shift) ** 2, axis=-1)
        # a new draw, from the spread of T draws: (T / (T - 1)) (1 + 1 / T) its mean square
        variance = spread * (n_tasks + 1) / (n_tasks - 1) + np.mean(spreads ** 2) * std ** 2
        return np.sqrt(variance)


def _relative_levels(prior: PriorData) -> tuple[np.ndarray, np.ndarray]:
    """The prior tasks' levels, and their spreads divided by the tasks' average spread."""
    levels, spreads = prior.task_levels()
    return levels, spreads / spreads.mean()
