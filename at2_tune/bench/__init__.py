"""``at2-tune bench``: AT2 next to Ray Tune's tuners and the model-free transfer baselines,
on the same replay tasks and the same budget in epochs (see :mod:`at2_tune.bench.methods`)."""
