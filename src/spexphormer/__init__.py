"""Spexphormer: graph transformers on graphs larger than memory.

Stage 1 trains a narrow Attention Score Estimator on the expander-augmented graph and exports
per-layer attention scores; stage 2 samples a few edges per node per layer from those scores and
trains a wide graph transformer on the sparse, regular-degree graphs in mini-batches.
"""

__version__ = "0.1.0"

from spexphormer.errors import (  # noqa: F401
    CheckpointError,
    ConfigError,
    DataError,
    ScoresMismatch,
    SpexphormerError,
)
