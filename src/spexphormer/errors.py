"""Typed errors raised by the library.

Every error a user can cause (bad files, bad keys, mismatched scores) is a subclass of
:class:`SpexphormerError`. The CLI turns these into one line ``error: ...`` and exit status 2;
anything else is a bug and keeps its traceback.
"""


class SpexphormerError(Exception):
    """Base class of all user-facing errors."""


class DataError(SpexphormerError):
    """A dataset or graph file is missing, corrupt or inconsistent."""


class ConfigError(SpexphormerError):
    """A configuration key or value is unknown or invalid."""


class ScoresMismatch(SpexphormerError):
    """A scores file is truncated, of the wrong format, or belongs to another graph."""


class CheckpointError(SpexphormerError):
    """A checkpoint file is missing, corrupt, or does not fit the model."""


class RunFolderBusy(SpexphormerError):
    """Another process is writing into the same run folder."""


class WriteError(SpexphormerError):
    """An output file could not be written (e.g. the disk is full); the previous file is intact."""
