"""TI-FGSM (Dong et al. 2019): iterative FGSM whose gradient is smoothed by a Gaussian kernel
(translation invariance), with input diversity, made for transfer."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchattacks
from torch import nn

from gap_art.attacks.base import AttackSettings, TorchattacksOnlyRecipe, register
from gap_art.errors import ParameterError

KERNEL = 5
"""The smoothing kernel's size in pixels: torchattacks' 15 is made for 299-pixel ImageNet
images; 5 smooths 28- and 32-pixel images over a comparable share of their width."""


class _GreyAsRGB(nn.Module):
    """A grey-image model that takes three identical channels (their mean)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.mean(dim=1, keepdim=True))


class _TIFGSM(torchattacks.attack.Attack):
    """torchattacks' TI-FGSM, whose smoothing convolution expects three channels, on colour or
    grey images: a grey image is attacked as three identical channels, which stay identical
    (their gradients are), and comes back as one."""

    def __init__(self, model: nn.Module, build: Callable[[nn.Module], torchattacks.TIFGSM]) -> None:
        super().__init__("TIFGSM", model)
        self.colour, self.grey = build(model), build(_GreyAsRGB(model))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        channels = images.shape[1]
        if channels == 3:
            return self.colour(images, labels)
        if channels == 1:
            return self.grey(images.expand(-1, 3, -1, -1).contiguous(), labels).mean(dim=1, keepdim=True)
        raise ParameterError(f"tifgsm attacks grey or RGB images, got {channels} channels")


@register("tifgsm")
class TIFGSM(TorchattacksOnlyRecipe):
    description = (
        "TI-FGSM: translation-invariant iterative FGSM (smoothed gradients), a transfer attack (torchattacks)"
    )
    extras = {"decay": 0.0}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        def build(model: nn.Module) -> torchattacks.TIFGSM:
            return torchattacks.TIFGSM(
                model, eps=s.eps, alpha=s.eps_step, steps=s.steps, decay=s.extras["decay"], len_kernel=KERNEL
            )

        return _TIFGSM(module, build)
