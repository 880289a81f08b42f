"""Create a model by name for a dataset's input shape and class count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gap_art.models.cnn import MLP, LeNet, SmallCNN, WideLeNet
from gap_art.models.resnet_cifar import CifarResNet
from gap_art.models.vgg import VGG11BN


class ModelInputError(ValueError):
    """The model cannot take inputs of the requested shape."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: how to build it, what it accepts and how to train it.

    :param factory: ``factory(nb_classes, input_shape) -> nn.Module`` (shape C, H, W).
    :param input_hw: The image height and width it is built for (``None``: any).
    :param recipe: Training recipe family, ``"adam"`` (small CNNs) or ``"sgd"`` (ResNet/VGG).
    """

    factory: Callable[[int, tuple[int, ...]], nn.Module]
    input_hw: tuple[int, int] | None
    recipe: str


MODELS: dict[str, ModelSpec] = {
    "small-cnn": ModelSpec(lambda k, s: SmallCNN(k, s[0]), (8, 8), "adam"),
    "lenet": ModelSpec(lambda k, s: LeNet(k, s[0]), (28, 28), "adam"),
    "lenet-wide": ModelSpec(lambda k, s: WideLeNet(k, s[0]), (28, 28), "adam"),
    "mlp": ModelSpec(lambda k, s: MLP(k, s), None, "adam"),
    "resnet20": ModelSpec(lambda k, s: CifarResNet(20, k, s[0]), (32, 32), "sgd"),
    "resnet20-28": ModelSpec(lambda k, s: CifarResNet(20, k, s[0]), (28, 28), "sgd"),
    "resnet56": ModelSpec(lambda k, s: CifarResNet(56, k, s[0]), (32, 32), "sgd"),
    "vgg11-bn": ModelSpec(lambda k, s: VGG11BN(k, s[0]), (32, 32), "sgd"),
}


def model_names() -> list[str]:
    """Registered names; any torchvision classification model is accepted too."""
    return sorted(MODELS)


def independent_arch(arch: str, input_shape: tuple[int, ...]) -> str:
    """A registered architecture unlike ``arch`` for inputs of ``input_shape`` (C, H, W): the
    ``independent-arch`` attacker's default. At 32x32 a VGG against a ResNet and the reverse;
    otherwise ``mlp`` (any size, cheap, no convolution), or the registered CNN of that size
    when ``arch`` is the MLP itself."""
    height_width = tuple(input_shape[-2:])
    if height_width == (32, 32):
        return "resnet20" if arch.startswith("vgg") else "vgg11-bn"
    if arch != "mlp":
        return "mlp"
    cnn = next((name for name, spec in MODELS.items() if spec.input_hw == height_width), None)
    if cnn is None:
        raise ModelInputError(f"no registered CNN takes {height_width} inputs: name the attacker's arch")
    return cnn


def model_recipe(name: str) -> str:
    """The training recipe family of a model name (``sgd`` for torchvision models)."""
    return MODELS[name].recipe if name in MODELS else "sgd"


def create_model(name: str, input_shape: tuple[int, ...], nb_classes: int) -> nn.Module:
    """Build an untrained model for inputs of ``input_shape`` (C, H, W) and ``nb_classes``.

    :raises ValueError: Unknown name (the message lists the known ones).
    :raises ModelInputError: The architecture cannot take this input shape.
    """
    if len(input_shape) != 3:
        raise ModelInputError(f"input_shape must be (channels, height, width), got {input_shape}")
    if nb_classes < 2:
        raise ValueError(f"nb_classes must be at least 2, got {nb_classes}")
    channels, height, width = input_shape
    if name in MODELS:
        spec = MODELS[name]
        if spec.input_hw is not None and (height, width) != spec.input_hw:
            expected = (channels, *spec.input_hw)
            raise ModelInputError(
                f"model {name!r} expects input shape {expected} (C x {spec.input_hw[0]} x "
                f"{spec.input_hw[1]}), got {tuple(input_shape)}"
            )
        return spec.factory(nb_classes, (channels, height, width))
    return _torchvision_model(name, tuple(input_shape), nb_classes)


def _torchvision_model(name: str, input_shape: tuple[int, ...], nb_classes: int) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ValueError(
            f"model must be one of {model_names()} or a torchvision classification model "
            f"(e.g. resnet18, mobilenet_v2), got {name!r}"
        )
    if input_shape[0] != 3:
        raise ModelInputError(
            f"torchvision model {name!r} expects 3 input channels, got input shape {input_shape}"
        )
    model = torchvision.models.get_model(name, weights=None, num_classes=nb_classes)
    _check_forward(model, name, input_shape)
    return model


def _check_forward(model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    except (RuntimeError, ValueError) as error:
        raise ModelInputError(f"model {name!r} cannot process input shape {input_shape}: {error}") from error
    finally:
        model.train(was_training)
