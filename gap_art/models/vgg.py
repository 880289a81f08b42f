"""VGG-11 with batch norm and dropout, for 32 x 32 images."""

from __future__ import annotations

from torch import nn

from gap_art.models.cnn import FeaturesThenClassifier

VGG11_LAYOUT: tuple[int | str, ...] = (
    64,
    "M",
    128,
    "M",
    256,
    256,
    "M",
    512,
    512,
    "M",
    512,
    512,
    "M",
)


class VGG11BN(FeaturesThenClassifier):
    """The VGG-11 convolution stack with batch norm and a dropout classifier for 32 x 32 inputs."""

    def __init__(self, nb_classes: int = 10, in_channels: int = 3) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                width = int(item)
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width)]
                layers.append(nn.ReLU(inplace=True))
                channels = width
        head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(512, nb_classes),
        )
        super().__init__(nn.Sequential(*layers), head)
