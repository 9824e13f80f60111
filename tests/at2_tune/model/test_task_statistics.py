import pytest
import torch

from at2_tune.errors import AT2Error
from at2_tune.model.task_statistics import UNMATCHED_DISTANCE, MatchedTaskStatistics


def _direct_distances(values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    n_tasks = values.shape[0]
    d = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
    for i in range(n_tasks):
        for j in range(n_tasks):
            matched = observed[i] & observed[j]
            n = int(matched.sum())
            if i == j:
                continue
            if n <= 1:
                d[i, j] = UNMATCHED_DISTANCE
                continue
            mi = values[i, matched] - values[i, matched].mean()
            mj = values[j, matched] - values[j, matched].mean()
            d[i, j] = ((mi - mj) ** 2).sum() / n
    return d


@pytest.fixture
def table():
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(5, 40, generator=generator, dtype=torch.float64)
    observed = torch.rand(5, 40, generator=generator) < 0.6
    observed[4] = False
    observed[4, :1] = True  # a task with a single observed cell
    return values, observed


def test_table_statistics_match_a_direct_computation(table):
    values, observed = table
    stats = MatchedTaskStatistics.from_table(values, observed)
    torch.testing.assert_close(stats.distances(), _direct_distances(values, observed))


def test_incremental_updates_equal_the_table(table):
    values, observed = table
    stats = MatchedTaskStatistics(5, 40)
    generator = torch.Generator().manual_seed(1)
    cells = [(t, c) for t in range(5) for c in range(40) if observed[t, c]]
    for index in torch.randperm(len(cells), generator=generator).tolist():
        task, cell = cells[index]
        stats.add(task, torch.tensor([cell]), values[task, cell].reshape(1))
    reference = MatchedTaskStatistics.from_table(values, observed)
    for name in ("counts", "sums", "squares", "products"):
        torch.testing.assert_close(getattr(stats, name), getattr(reference, name))
    torch.testing.assert_close(stats.distances(), _direct_distances(values, observed))


def test_several_cells_at_once_and_unmatched_fill(table):
    values, observed = table
    stats = MatchedTaskStatistics.from_table(values[:4], observed[:4])
    bigger = MatchedTaskStatistics(5, 40)
    for task in range(4):
        cells = observed[task].nonzero().squeeze(-1)
        bigger.add(task, cells, values[task, cells])
    torch.testing.assert_close(bigger.distances()[:4, :4], stats.distances())
    assert torch.all(bigger.distances(unmatched=0.25)[4, :4] == 0.25)


def test_repeated_cell_is_rejected(table):
    values, observed = table
    stats = MatchedTaskStatistics.from_table(values, observed)
    cell = int(observed[0].nonzero()[0])
    with pytest.raises(AT2Error, match="already observed"):
        stats.add(0, torch.tensor([cell]), torch.tensor([0.5]))
