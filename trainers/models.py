"""ResNet models of the HyperRec space (torchvision, random initialisation)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from trainers.errors import TrainerConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {
    "ResNet34": torchvision.models.resnet34,
    "ResNet50": torchvision.models.resnet50,
}
"""Model names of the space -> torchvision constructors."""


def build_model(name: str, num_classes: int, *, small_input_stem: bool = False,
                seed: int = 0) -> nn.Module:
    """Build a randomly initialised torchvision ResNet on the CPU.

    Args:
        name: ``"ResNet34"`` or ``"ResNet50"``.
        num_classes: width ``C`` of the final layer; the model maps float ``[B, 3, H, W]`` to
            logits ``[B, C]``.
        small_input_stem: replace the 7x7/stride-2 stem convolution and the max-pool by a
            3x3/stride-1 convolution without pooling (the usual CIFAR variant, for 32-64 px
            images: the feature maps stay 4x larger per side, ~16x the compute).
        seed: seed of the weight initialisation. It is applied inside
            :func:`torch.random.fork_rng`, so the global RNG state is left untouched.

    Raises:
        TrainerConfigError: unknown model name.
    """
    if name not in MODELS:
        raise TrainerConfigError(
            f"model {name!r} is not one of {', '.join(MODELS)}; choose one of those")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = MODELS[name](weights=None, num_classes=int(num_classes))
        if small_input_stem:
            conv = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=1,
                             bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            model.conv1 = conv
            model.maxpool = nn.Identity()
    return model
