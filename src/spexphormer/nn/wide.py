"""The wide stage-2 models by name (``stage2.model``; checkpoints record the name as their kind)."""

from __future__ import annotations

from torch import nn

from spexphormer.errors import ConfigError
from spexphormer.nn.local_attention import LocalAttentionNet
from spexphormer.nn.models import Spexphormer

__all__ = ["WIDE_MODELS", "wide_model"]

#: name -> class; every class takes ``(x, index, edge_type)`` of a sampled batch.
WIDE_MODELS: dict[str, type[nn.Module]] = {"spexphormer": Spexphormer, "local-attention": LocalAttentionNet}


def wide_model(name: str) -> type[nn.Module]:
    """The class of the wide model ``name``; a :class:`~spexphormer.errors.ConfigError` if unknown."""
    if name not in WIDE_MODELS:
        raise ConfigError(f"unknown model {name!r}; models: {', '.join(WIDE_MODELS)}")
    return WIDE_MODELS[name]
