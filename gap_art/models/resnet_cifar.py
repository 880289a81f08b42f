"""ResNet-20/32/44/56 for 32 x 32 images (He et al. 2016, CIFAR variant, option-A shortcuts)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gap_art.errors import ParameterError


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; a parameter-free shortcut pads channels."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with ``6 n + 2`` layers: three stages of ``n`` blocks at 16, 32 and 64 channels."""

    def __init__(self, depth: int, nb_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ParameterError(f"depth must be 6n + 2 (20, 32, 44, 56, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, nb_classes)
        self.fc.is_classifier = True  # type: ignore[assignment]  # the logits layer, kept by pruning
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def residual_stream(self) -> list[nn.Module]:
        """The layers writing the channels the option-A shortcuts add to and pad, which channel
        pruning must leave whole (Torch-Pruning cannot follow a padded shortcut): the stem and
        each block's second convolution. The blocks' inner channels are the prunable ones."""
        blocks = [block for block in self.layers if isinstance(block, BasicBlock)]
        return [self.conv1, *(block.conv2 for block in blocks)]

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)
