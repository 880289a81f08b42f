"""Small networks for the 8x8 digits and 28x28 (Fashion-)MNIST images: CNNs, and an MLP for any size."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FeaturesThenClassifier(nn.Module):
    """A ``features`` stack followed by a ``classifier`` head (the layout of LeNet and VGG).
    The head's last layer produces the logits and is marked ``is_classifier`` (the GAP
    reference's convention: pruning leaves it alone by default)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        classifier[-1].is_classifier = True  # type: ignore[assignment]

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class SmallCNN(FeaturesThenClassifier):
    """Two 3x3 convolutions and two linear layers, for 1 x 8 x 8 images."""

    def __init__(self, nb_classes: int = 10, in_channels: int = 1) -> None:
        conv = [nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1)]
        super().__init__(
            nn.Sequential(*conv, nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, nb_classes)),
        )


class LeNet(FeaturesThenClassifier):
    """LeNet-5 with ReLU and max pooling, for 1 x 28 x 28 images."""

    def __init__(self, nb_classes: int = 10, in_channels: int = 1) -> None:
        pool = nn.MaxPool2d(2)
        super().__init__(
            nn.Sequential(
                nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), pool, nn.Conv2d(6, 16, 5), nn.ReLU(), pool
            ),
            nn.Sequential(
                nn.Flatten(),
                nn.Linear(16 * 5 * 5, 120),
                nn.ReLU(),
                nn.Linear(120, 84),
                nn.ReLU(),
                nn.Linear(84, nb_classes),
            ),
        )


class WideLeNet(FeaturesThenClassifier):
    """LeNet's layout widened (16 and 32 5x5 filters, 1,600 hidden units), for 1 x 28 x 28
    images: 850k parameters, most of them in the hidden layer, so that pruning at 4x removes
    capacity the model does not need (the over-parameterised regime of the GAP paper) while a
    forward pass stays cheap on CPU (1.9M multiply-adds)."""

    def __init__(self, nb_classes: int = 10, in_channels: int = 1) -> None:
        pool = nn.MaxPool2d(2)
        super().__init__(
            nn.Sequential(
                nn.Conv2d(in_channels, 16, 5), nn.ReLU(), pool, nn.Conv2d(16, 32, 5), nn.ReLU(), pool
            ),
            nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 1600), nn.ReLU(), nn.Linear(1600, nb_classes)),
        )


class MLP(FeaturesThenClassifier):
    """Two hidden layers of 256 units on the flattened image, for any input size: no
    convolution, so its gradients differ in kind from a CNN's (the ``independent-arch``
    attacker's default on small images)."""

    def __init__(self, nb_classes: int = 10, input_shape: tuple[int, ...] = (1, 8, 8)) -> None:
        features = int(torch.tensor(input_shape).prod())
        super().__init__(
            nn.Sequential(nn.Flatten(), nn.Linear(features, 256), nn.ReLU()),
            nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, nb_classes)),
        )
