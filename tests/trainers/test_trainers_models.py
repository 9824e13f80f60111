"""Models and top-k metrics."""

from __future__ import annotations

import pytest
import torch

from trainers.errors import TrainerConfigError
from trainers.loop import topk_correct
from trainers.models import build_model


@pytest.mark.parametrize("name", ["ResNet34", "ResNet50"])
def test_build_model_shapes_and_seeded_init(name: str) -> None:
    model = build_model(name, num_classes=7, seed=3).eval()
    x = torch.zeros(2, 3, 32, 32)
    with torch.inference_mode():
        assert model(x).shape == (2, 7)
    same = build_model(name, num_classes=7, seed=3)
    other = build_model(name, num_classes=7, seed=4)
    assert torch.equal(model.fc.weight, same.fc.weight)
    assert not torch.equal(model.fc.weight, other.fc.weight)


def test_small_input_stem() -> None:
    model = build_model("ResNet34", num_classes=3, small_input_stem=True)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    feats = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1)
    with torch.inference_mode():
        assert feats.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 64, 32, 32)
    default = build_model("ResNet34", num_classes=3)
    assert default.conv1.kernel_size == (7, 7) and default.conv1.stride == (2, 2)


def test_unknown_model() -> None:
    with pytest.raises(TrainerConfigError, match="'ResNet18' is not one of ResNet34, ResNet50"):
        build_model("ResNet18", num_classes=3)


def test_topk_correct_clamps_k_to_num_classes() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
    targets = torch.tensor([0, 0, 2])
    # top1: row 0 only; top2 would add row 2; k=5 and k=10 are clamped to 3 -> all correct
    assert topk_correct(logits, targets, ks=(1, 2, 5, 10)).tolist() == [1.0, 2.0, 3.0, 3.0]
    many = torch.arange(24.0).reshape(2, 12)
    assert topk_correct(many, torch.tensor([11, 1])).tolist() == [1.0, 1.0, 1.0]
