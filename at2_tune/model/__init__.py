"""The AT2 surrogate: a sparse variational GP over (hyperparameters, task, epoch) in GPyTorch."""
