"""Snap any configuration of a space to the nearest one of a fixed set (a database's grid).

A replay can only train the configurations a learning-curve database holds. A searcher that
samples the space natively (random search, TPE, BOHB's KDE) keeps its own model of the space;
each of its samples is trained as the database configuration nearest to it.

Distance: the squared Euclidean distance of the numeric encodings (each parameter scaled to
``[0, 1]``, log parameters on the log scale, inactive ones at 0) plus 1 per categorical
parameter whose choice differs (the largest distance one numeric parameter can add). Ties go to
the configuration listed first.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from search_spaces.keys import config_key
from search_spaces.space import SearchSpace


class NearestConfig:
    """The index of the nearest of ``configs`` (canonical configurations of ``space``).

    Shapes: the encodings are ``(N, n_numeric)`` floats and ``(N, n_categorical)`` ints.
    """

    def __init__(self, space: SearchSpace, configs: Sequence[Mapping[str, Any]]) -> None:
        if not configs:
            raise ValueError("NearestConfig needs at least one configuration to snap to")
        self.space = space
        self._numeric, self._categorical = space.encode_many(configs)
        self._exact = {config_key(dict(c)): i for i, c in enumerate(configs)}

    def __len__(self) -> int:
        return len(self._numeric)

    def canonical(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` as a canonical configuration: a configuration of the space as it is, or
        a sample of ``space.to_param_space()`` (all branches, Ratio factors) converted."""
        try:
            return self.space.validate(config)
        except ValueError:
            return self.space.from_ray_config(config)

    def index(self, config: Mapping[str, Any]) -> int:
        """Index of the configuration nearest to ``config`` (itself if it is one of them)."""
        exact = self._exact.get(config_key(dict(config)))
        if exact is not None:
            return exact
        numeric, categorical = self.space.encode(self.canonical(config))
        distance = ((self._numeric - numeric) ** 2).sum(axis=1) + \
            (self._categorical != categorical).sum(axis=1)
        return int(np.argmin(distance))
