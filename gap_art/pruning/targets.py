"""Which tensors are prunable: the weights that a pruning method may remove."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gap_art.errors import ParameterError

Target = tuple[nn.Module, str]
"""A prunable tensor: ``(module, name)``, as in ``torch.nn.utils.prune.global_unstructured``."""

PRUNABLE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _output_size(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels  # type: ignore[return-value]


def classifier_layer(model: nn.Module, nb_classes: int | None = None) -> nn.Module | None:
    """The layer that produces the logits, which pruning leaves alone by default.

    A layer marked ``is_classifier = True`` (the GAP reference's convention) wins; otherwise
    the last Conv/Linear layer whose output size is ``nb_classes`` (the last Conv/Linear
    layer when ``nb_classes`` is not given). ``None`` when no layer matches.
    """
    layers = [m for m in model.modules() if isinstance(m, PRUNABLE_LAYERS)]
    marked = [m for m in layers if getattr(m, "is_classifier", False)]
    if marked:
        return marked[-1]
    candidates = [m for m in layers if nb_classes is None or _output_size(m) == nb_classes]
    return candidates[-1] if candidates else None


def prunable_parameters(
    model: nn.Module,
    parameters: Sequence[Target] | None = None,
    prune_classifier: bool = False,
    nb_classes: int | None = None,
) -> list[Target]:
    """The tensors to prune: the weights of Conv and Linear layers, except the classifier
    layer (see :func:`classifier_layer`) unless ``prune_classifier``; or ``parameters``.

    Keeping the classifier matters for GAP: a signed-gradient ranking removes whole output
    rows of the classes the attack pushes examples into, and a model that cannot predict a
    class "resists" transfer by being broken.

    :raises ValueError: The model has no prunable weight, or a given pair names no tensor.
    """
    if parameters is None:
        skipped = None if prune_classifier else classifier_layer(model, nb_classes)
        layers = [m for m in model.modules() if isinstance(m, PRUNABLE_LAYERS) and m is not skipped]
        if not layers:
            raise ParameterError(
                f"model {type(model).__name__} has no prunable weights besides its classifier layer "
                "(no other Conv or Linear layer); pass prune_classifier=True, or parameters=[(module, "
                "name), ...] to choose them"
            )
        return [(m, "weight") for m in layers]
    targets = list(parameters)
    if not targets:
        raise ParameterError("parameters must name at least one (module, name) pair")
    owned = {id(m) for m in model.modules()}
    for module, name in targets:
        if id(module) not in owned or not isinstance(getattr(module, name, None), torch.Tensor):
            raise ParameterError(
                f"parameters: ({type(module).__name__}, {name!r}) is not a tensor of the model"
            )
    return targets


def excluded_layers(model: nn.Module, targets: Sequence[Target]) -> list[str]:
    """The Conv/Linear weights of ``model`` that are not among ``targets``, by name: what a
    report must say was left unpruned."""
    chosen = {(id(m), n) for m, n in targets}
    rest = [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE_LAYERS)]
    return target_names(model, [(m, n) for m, n in rest if (id(m), n) not in chosen])


def target_names(model: nn.Module, targets: Sequence[Target]) -> list[str]:
    """``"<module path>.<name>"`` for each target, for reports and checkpoints."""
    paths = {id(m): p for p, m in model.named_modules()}
    return [f"{paths[id(m)]}.{name}".lstrip(".") for m, name in targets]
