"""Architectures gap-art does not register: a class or factory from the user's own module
(``package.module:Name``), a timm model (``timm:resnet18``), or a torchvision classifier.

Import paths are code: gap-art imports one only when the user names it (``--arch``, ``arch=``),
never because a checkpoint file says so (see :func:`is_import_path`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from gap_art.errors import ParameterError

TIMM_PREFIX = "timm:"
CLASS_ARGS = ("num_classes", "nb_classes", "n_classes")
"""Keyword names through which a factory is told the number of classes (the first it takes)."""
CHANNEL_ARGS = ("in_channels", "in_chans", "input_channels")
"""Keyword names through which a factory is told the number of input channels."""


class ModelInputError(ParameterError):
    """The model cannot take inputs of the requested shape."""


def is_import_path(name: str) -> bool:
    """Whether ``name`` is ``package.module:Name`` (user code) rather than a timm name."""
    return ":" in name and not name.startswith(TIMM_PREFIX)


def parse_arch_kwargs(text: str | Mapping[str, Any] | None, param: str = "arch_kwargs") -> dict[str, Any]:
    """Keyword arguments of an architecture from JSON text (``--arch-kwargs '{"width": 64}'``)."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    expected = f"{param} must be a JSON object such as '{{\"width\": 64}}', got {text!r}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParameterError(f"{expected} ({error.msg})") from None
    if not isinstance(value, dict):
        raise ParameterError(expected)
    return value


def import_factory(path: str) -> Callable[..., Any]:
    """The class or function ``package.module:Name`` names (``Name`` may be dotted); the current
    folder is searched too, as a user running ``gap-art`` beside their ``models.py`` expects."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ParameterError(f"arch must be package.module:Name, got {path!r}")
    try:
        module = _import(module_name)
    except ImportError as error:
        raise ParameterError(f"arch {path!r}: cannot import module {module_name!r} ({error})") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ParameterError(f"arch {path!r}: module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ParameterError(f"arch {path!r} must name a class or a function returning an nn.Module")
    return target


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name.split(".")[0] or "" in sys.path:
            raise
    sys.path.insert(0, "")
    return importlib.import_module(module_name)


def build_external(
    name: str, input_shape: tuple[int, ...], nb_classes: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    """An untrained model of an import path or a timm name, checked to map one input of
    ``input_shape`` to ``nb_classes`` logits."""
    if name.startswith(TIMM_PREFIX):
        model = _timm_model(name[len(TIMM_PREFIX) :], input_shape, nb_classes, kwargs)
    else:
        factory = import_factory(name)
        try:
            model = factory(**_told(factory, input_shape, nb_classes, kwargs))
        except TypeError as error:
            raise ParameterError(
                f"arch {name!r} could not be built ({error}): it is told num_classes and in_channels "
                "where it takes them; pass its other arguments with --arch-kwargs (arch_kwargs)"
            ) from None
        if not isinstance(model, nn.Module):
            raise ParameterError(f"arch {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    check_logits(model, name, input_shape, nb_classes)
    return model


def _told(
    factory: Callable[..., Any], input_shape: tuple[int, ...], nb_classes: int, kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """``kwargs`` plus the class and channel counts, under the names ``factory`` takes."""
    try:
        accepted = set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        accepted = set()
    told = dict(kwargs)
    for names, value in ((CLASS_ARGS, nb_classes), (CHANNEL_ARGS, input_shape[0])):
        name = next((n for n in names if n in accepted), None)
        if name is not None and not any(n in told for n in names):
            told[name] = value
    return told


def _timm_model(
    name: str, input_shape: tuple[int, ...], nb_classes: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ParameterError(f"arch 'timm:{name}' needs timm: pip install 'gap-art[timm]'") from None
    if name not in timm.list_models():
        raise ParameterError(f"arch 'timm:{name}' is not a timm model (see timm.list_models())")
    options = {"pretrained": False, "num_classes": nb_classes, "in_chans": input_shape[0], **kwargs}
    if options["pretrained"]:
        raise ParameterError(
            "arch_kwargs: pretrained weights need a download; load your weights as MODEL instead"
        )
    return timm.create_model(name, **options)


def torchvision_model(
    name: str, input_shape: tuple[int, ...], nb_classes: int, kwargs: Mapping[str, Any], known: list[str]
) -> nn.Module:
    """An untrained torchvision classifier (``known`` lists gap-art's own names for the error)."""
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ParameterError(
            f"arch must be one of {known}, a torchvision classification model (e.g. resnet18), "
            f"timm:NAME or package.module:Name, got {name!r}"
        )
    if input_shape[0] != 3:
        raise ModelInputError(
            f"torchvision model {name!r} expects 3 input channels, got input shape {input_shape}"
        )
    model = torchvision.models.get_model(name, weights=None, num_classes=nb_classes, **kwargs)
    check_logits(model, name, input_shape, nb_classes)
    return model


def check_arch(name: str, registered: list[str], param: str = "arch") -> None:
    """Refuse an architecture name that cannot be built, without building it: an import path
    must import, a timm name must be listed, any other name must be registered or torchvision's."""
    if name in registered:
        return
    if name.startswith(TIMM_PREFIX):
        try:
            import timm
        except ImportError:
            raise ParameterError(f"{param} {name!r} needs timm: pip install 'gap-art[timm]'") from None
        if name[len(TIMM_PREFIX) :] not in timm.list_models():
            raise ParameterError(f"{param} {name!r} is not a timm model (see timm.list_models())")
    elif ":" in name:
        import_factory(name)
    else:
        import torchvision

        if name not in torchvision.models.list_models(module=torchvision.models):
            raise ParameterError(
                f"{param} must be one of {registered}, a torchvision classification model, timm:NAME "
                f"or package.module:Name, got {name!r}"
            )


def check_logits(model: nn.Module, name: str, input_shape: tuple[int, ...], nb_classes: int) -> None:
    """Run one zero input through ``model`` and require ``(1, nb_classes)`` logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(1, *input_shape))
    except (RuntimeError, ValueError, TypeError) as error:
        raise ModelInputError(f"model {name!r} cannot process input shape {input_shape}: {error}") from None
    finally:
        model.train(was_training)
    shape = tuple(getattr(logits, "shape", ()))
    if shape != (1, nb_classes):
        raise ModelInputError(
            f"model {name!r} returns output of shape {shape} for one input, expected (1, {nb_classes}) "
            f"logits: give it a num_classes parameter or set it with --arch-kwargs (arch_kwargs)"
        )
