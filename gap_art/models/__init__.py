"""Models of the study, created by name for a dataset's input shape: gap-art's own, torchvision's,
timm's (``timm:NAME``) or the user's (``package.module:Name``)."""

from gap_art.models.ensemble import EnsembleModule
from gap_art.models.external import check_arch, is_import_path, parse_arch_kwargs
from gap_art.models.registry import MODELS, ModelInputError, create_model, independent_arch, model_names

__all__ = [
    "EnsembleModule",
    "MODELS",
    "ModelInputError",
    "check_arch",
    "create_model",
    "independent_arch",
    "is_import_path",
    "model_names",
    "parse_arch_kwargs",
]
