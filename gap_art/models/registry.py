"""Create a model by name for a dataset's input shape and class count."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from gap_art.errors import ParameterError
from gap_art.models.cnn import MLP, LeNet, SmallCNN, WideLeNet
from gap_art.models.external import ModelInputError, build_external, torchvision_model
from gap_art.models.resnet_cifar import CifarResNet
from gap_art.models.vgg import VGG11BN


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


def create_model(
    name: str, input_shape: tuple[int, ...], nb_classes: int, kwargs: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build an untrained model for inputs of ``input_shape`` (C, H, W) and ``nb_classes``.

    :param name: A registry name (:func:`model_names`), a torchvision classifier (``resnet18``),
        a timm model (``timm:resnet18``, with timm installed) or a class or factory of your own
        (``package.module:Name``; told ``num_classes`` and ``in_channels`` where it takes them).
    :param kwargs: Keyword arguments of the torchvision, timm or own factory.
    :raises ValueError: Unknown name (the message lists the known ones).
    :raises ModelInputError: The architecture cannot take this input shape or does not return
        ``nb_classes`` logits.
    """
    if len(input_shape) != 3:
        raise ModelInputError(f"input_shape must be (channels, height, width), got {input_shape}")
    if nb_classes < 2:
        raise ParameterError(f"nb_classes must be at least 2, got {nb_classes}")
    shape = tuple(int(v) for v in input_shape)
    if ":" in name:
        return build_external(name, shape, nb_classes, kwargs or {})
    if name not in MODELS:
        return torchvision_model(name, shape, nb_classes, kwargs or {}, model_names())
    if kwargs:
        raise ParameterError(f"arch_kwargs: gap-art's own model {name!r} takes none, got {dict(kwargs)}")
    spec = MODELS[name]
    if spec.input_hw is not None and shape[1:] != spec.input_hw:
        raise ModelInputError(
            f"model {name!r} expects input shape {(shape[0], *spec.input_hw)} (C x {spec.input_hw[0]} x "
            f"{spec.input_hw[1]}), got {shape}"
        )
    return spec.factory(nb_classes, shape)
