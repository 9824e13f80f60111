import torch

from at2_tune.model.epoch_kernel import EpochKernel


def _direct(t1: float, t2: float, a: float, b: float) -> float:
    return 1 + (b / (t1 + t2 + b)) ** a - (b / (t1 + b)) ** a - (b / (t2 + b)) ** a


def test_known_values_zero_at_start_and_symmetry():
    kernel = EpochKernel().double()
    kernel.alpha, kernel.beta = 0.7, 1.3
    t = torch.tensor([[0.0], [0.2], [0.5], [1.0]], dtype=torch.float64)
    k = kernel(t, t).to_dense()
    for i in range(4):
        for j in range(4):
            assert torch.isclose(k[i, j], torch.tensor(_direct(t[i, 0].item(), t[j, 0].item(), 0.7, 1.3),
                                                       dtype=torch.float64))
    assert k[0].abs().max() < 1e-12 and k[:, 0].abs().max() < 1e-12
    torch.testing.assert_close(k, k.T)
    diag = kernel(t, t, diag=True)
    torch.testing.assert_close(diag, torch.diagonal(k))


def test_positive_semi_definite_on_many_points():
    kernel = EpochKernel().double()
    kernel.alpha, kernel.beta = 2.5, 0.3
    t = torch.linspace(0.01, 1.0, 60, dtype=torch.float64).unsqueeze(-1)
    eigenvalues = torch.linalg.eigvalsh(kernel(t, t).to_dense())
    assert eigenvalues.min() > -1e-10


def test_gradients_reach_alpha_and_beta_and_negative_progress_is_mirrored():
    kernel = EpochKernel().double()
    t = torch.tensor([[0.3], [0.8]], dtype=torch.float64)
    kernel(t, t).to_dense().sum().backward()
    assert kernel.raw_alpha.grad.abs().item() > 0 and kernel.raw_beta.grad.abs().item() > 0
    torch.testing.assert_close(kernel(-t, t).to_dense(), kernel(t, t).to_dense())
