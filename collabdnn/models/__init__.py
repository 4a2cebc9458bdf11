"""Models: the registry and the per-model unit partitions."""

from collabdnn.models.registry import MODELS, ModelSpec, get_spec

__all__ = ["MODELS", "ModelSpec", "get_spec"]
