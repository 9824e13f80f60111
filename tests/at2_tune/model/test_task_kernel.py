import torch

from at2_tune.model.task_kernel import TaskKernel
from at2_tune.model.task_statistics import MatchedTaskStatistics


def _kernel_with_statistics(seed: int = 0, n_tasks: int = 6) -> TaskKernel:
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(n_tasks, 30, generator=generator, dtype=torch.float64)
    observed = torch.rand(n_tasks, 30, generator=generator) < 0.5
    kernel = TaskKernel(n_tasks).double()
    kernel.set_statistics(MatchedTaskStatistics.from_table(values, observed))
    return kernel


def test_formula_on_a_hand_made_case():
    values = torch.tensor([[0.1, 0.2, 0.3, 0.0], [0.3, 0.3, 0.6, 0.0]], dtype=torch.float64)
    observed = torch.tensor([[True, True, True, False], [True, True, True, True]])
    stats = MatchedTaskStatistics.from_table(values, observed)
    # centred: task0 (-0.1, 0, 0.1), task1 (-0.1, -0.1, 0.2): d = (0 + 0.01 + 0.01) / 3
    assert torch.isclose(stats.distances()[0, 1], torch.tensor(0.02 / 3, dtype=torch.float64))
    kernel = TaskKernel(2).double()
    kernel.task_lengthscale, kernel.sharpening = 0.5, 1.5
    kernel.set_statistics(stats)
    g = 1.5 / (1 + 0.5 * 3 / 4)
    expected = torch.exp(torch.tensor(-(0.02 / 3) / (0.5 * g) ** 2, dtype=torch.float64))
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    k = kernel(x, x).to_dense()
    torch.testing.assert_close(k[0, 1], expected)
    torch.testing.assert_close(torch.diagonal(k), torch.ones(2, dtype=torch.float64))


def test_psd_symmetric_and_indexed_by_task():
    for seed in range(5):
        kernel = _kernel_with_statistics(seed)
        kernel.task_lengthscale = 0.05  # sharp: the raw matrix is far from PSD
        covariance = kernel.task_covariance()
        torch.testing.assert_close(covariance, covariance.T)
        assert torch.linalg.eigvalsh(covariance).min() > 0
        tasks = torch.tensor([[0.0], [3.0], [3.0], [5.0]], dtype=torch.float64)
        k = kernel(tasks, tasks).to_dense()
        torch.testing.assert_close(k, covariance[tasks[:, 0].long()][:, tasks[:, 0].long()])


def test_gradients_flow_to_lengthscale_and_sharpening():
    kernel = _kernel_with_statistics()
    tasks = torch.arange(6, dtype=torch.float64).unsqueeze(-1)
    kernel(tasks, tasks).to_dense().sum().backward()
    assert kernel.raw_task_lengthscale.grad.abs().item() > 0
    assert kernel.raw_sharpening.grad.abs().item() > 0
