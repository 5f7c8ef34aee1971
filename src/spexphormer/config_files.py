"""Configurations as files: YAML or JSON, ``{section: {key: value}}``.

``spexphormer config --format yaml > x.yaml`` writes a file that ``--config x.yaml`` reads back
to the same :class:`~spexphormer.config.Config`. A file may hold any subset of the keys (the
rest keep the preset's values); an unknown section or key, or a value of the wrong type, raises
:class:`~spexphormer.errors.ConfigError`, as ``--set`` does. YAML is read with
``yaml.safe_load`` only: plain data, nothing in a file is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spexphormer.config import Config
from spexphormer.errors import ConfigError

FORMATS = ("text", "json", "yaml")
YAML_SUFFIXES = (".yaml", ".yml")

__all__ = ["FORMATS", "dump_config", "read_config_file", "apply_config_file"]


def dump_config(cfg: Config, fmt: str = "text") -> str:
    """``cfg`` as ``text`` (the ``section.key = value`` listing), ``json`` or ``yaml``."""
    if fmt == "text":
        return cfg.format()
    if fmt == "json":
        return json.dumps(cfg.to_dict(), indent=2)
    if fmt == "yaml":
        import yaml

        class Dumper(yaml.SafeDumper):  # one key per line; lists (ks) inline, as in the text listing
            pass

        Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
        return yaml.dump(cfg.to_dict(), Dumper=Dumper, sort_keys=False, default_flow_style=False).rstrip("\n")
    raise ConfigError(f"unknown config format {fmt!r}; formats: {', '.join(FORMATS)}")


def read_config_file(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The ``{section: {key: value}}`` mapping of a ``.yaml``/``.yml`` or JSON file.

    Raises:
        ConfigError: Unreadable file, a syntax error, or not a mapping of mappings.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        if path.suffix.lower() in YAML_SUFFIXES:
            import yaml
            try:
                values = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise ValueError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        else:
            values = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"cannot read config file {path}: {str(exc).splitlines()[0]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise ConfigError(f"config file {path} must hold {{section: {{key: value}}}}")
    return values


def apply_config_file(cfg: Config, path: str | os.PathLike) -> Config:
    """``cfg`` with the values of a config file applied and validated."""
    values = read_config_file(path)
    return cfg.override({f"{section}.{key}": value for section, kv in values.items() for key, value in kv.items()})
