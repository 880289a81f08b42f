"""Models of the study, created by name for a dataset's input shape."""

from gap_art.models.ensemble import EnsembleModule
from gap_art.models.registry import MODELS, ModelInputError, create_model, independent_arch, model_names

__all__ = ["EnsembleModule", "MODELS", "ModelInputError", "create_model", "independent_arch", "model_names"]
