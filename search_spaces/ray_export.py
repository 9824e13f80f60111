"""Ray Tune domains for the parameter kinds (Ray is imported only when these are called).

Ray's integer samplers exclude the upper bound (``randint``, ``lograndint``, and ``qrandint``
with ``q == 1``) but include it for ``qrandint``/``qlograndint`` with ``q > 1``; the bounds
below are chosen so that Ray draws from exactly the declared, inclusive range.
"""

from __future__ import annotations

from typing import Any

from search_spaces.params import Categorical, Float, Integer, Parameter, Ratio


def ray_domain(param: Parameter) -> Any:
    """The ``ray.tune`` domain that samples ``param`` as declared (a Ratio: its factor)."""
    from ray import tune

    if isinstance(param, Categorical):
        return tune.choice(list(param.choices))
    if isinstance(param, Integer):
        if param.q == 1:
            sampler = tune.lograndint if param.log else tune.randint
            return sampler(param.low, param.high + 1)
        sampler = tune.qlograndint if param.log else tune.qrandint
        return sampler(param.low, param.high, param.q)
    if isinstance(param, Float):
        if param.q is None:
            return (tune.loguniform if param.log else tune.uniform)(param.low, param.high)
        return (tune.qloguniform if param.log else tune.quniform)(param.low, param.high, param.q)
    if isinstance(param, Ratio):
        return tune.uniform(param.factor_low, param.factor_high)
    raise TypeError(f"not a parameter: {param!r}")
