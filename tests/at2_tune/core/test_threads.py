"""The driver's bounded torch thread count."""

import pytest
import torch

from at2_tune.core.threads import torch_threads


def test_the_block_runs_with_the_count_and_the_setting_comes_back_after_an_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(target):
            assert torch.get_num_threads() == target
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_a_count_that_is_not_a_whole_number_of_threads_is_refused(count):
    with pytest.raises(ValueError, match=r"gp_threads=.* must be a whole number >= 1"):
        with torch_threads(count):
            pass
