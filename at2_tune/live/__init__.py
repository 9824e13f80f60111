"""Live tuning of a real dataset with AT2 on a Ray cluster (``at2-tune tune``).

``options`` checks what the user asked for before anything trains, ``cluster`` connects to Ray
and checks its resources, ``run`` builds the searcher, the scheduler and the trainable and runs
(or restores) the Tune experiment, ``records`` keeps every trial's per-epoch results in the
output folder, ``summary`` writes ``summary.json`` and the learning-curve plot, ``status``
prints one line per AT2 decision.
"""

from at2_tune.live.options import LiveOptions
from at2_tune.live.run import run_live

__all__ = ["LiveOptions", "run_live"]
