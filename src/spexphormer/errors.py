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


#: The longest value an error message quotes, and the longest error line the CLI prints.
QUOTE_LIMIT = 60
LINE_LIMIT = 1000


def shown(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, on one line and cut to ``limit`` characters: a value
    from a file or the command line may be megabytes long (and is never expanded in full)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxset = 3, 6, 6, 4, 4
    short.maxstring = short.maxother = short.maxlong = limit
    text = " ".join(short.repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_error_line(message: str, limit: int = LINE_LIMIT) -> str:
    """``message`` as the CLI prints it: one line of at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
