"""Configurations as files: YAML or JSON, ``{section: {key: value}}``.

``spexphormer config --format yaml > x.yaml`` writes a file that ``--config x.yaml`` reads back
to the same :class:`~spexphormer.config.Config`. A file may hold any subset of the keys (the
rest keep the preset's values); an unknown section or key, or a value of the wrong type, raises
:class:`~spexphormer.errors.ConfigError`, as ``--set`` does. YAML is read with ``yaml``'s safe
loader only (plain data, nothing in a file is executed), with two further refusals: a key given
twice in one mapping (YAML and JSON would silently keep the last), and anchors and aliases (a
few hundred bytes of nested aliases expand to gigabytes). A config file is at most
``MAX_CONFIG_BYTES``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spexphormer.config import Config
from spexphormer.errors import ConfigError, one_error_line, shown
from spexphormer.utils.io import read_small_text

FORMATS = ("text", "json", "yaml")
YAML_SUFFIXES = (".yaml", ".yml")
#: A full configuration is about 2 KB; a file a thousand times that is not a configuration.
MAX_CONFIG_BYTES = 2**20

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


def _strict_yaml_loader():
    """``yaml.SafeLoader`` that refuses aliases and anchors, and keys given twice in a mapping."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise yaml.MarkedYAMLError(problem="anchors and aliases (&name, *name) are not allowed in a "
                                                   "config file", problem_mark=event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (list, dict, set)):
                    raise yaml.MarkedYAMLError(problem="a key must be a plain value, not a list or a mapping",
                                               problem_mark=key_node.start_mark)
                if key in seen:
                    raise yaml.MarkedYAMLError(problem=f"{shown(key)} is given twice",
                                               problem_mark=key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return StrictLoader


def _unique_keys(pairs: list) -> dict:
    """``json.loads``'s object hook: a key given twice in one object is an error."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{shown(key)} is given twice")
        seen[key] = value
    return seen


def read_config_file(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The ``{section: {key: value}}`` mapping of a ``.yaml``/``.yml`` or JSON file.

    Raises:
        ConfigError: Unreadable file, a syntax error, a key given twice, a YAML alias, or not
            a mapping of mappings.
    """
    path = Path(path)
    text = read_small_text(path, MAX_CONFIG_BYTES, "config file", ConfigError)
    try:
        if path.suffix.lower() in YAML_SUFFIXES:
            import yaml
            try:
                values = yaml.load(text, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise ValueError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        else:
            values = json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot read config file {path}: {one_error_line(first, 200)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise ConfigError(f"config file {path} must hold {{section: {{key: value}}}}")
    return values


def apply_config_file(cfg: Config, path: str | os.PathLike) -> Config:
    """``cfg`` with the values of a config file applied and validated."""
    values = read_config_file(path)
    return cfg.override({f"{section}.{key}": value for section, kv in values.items() for key, value in kv.items()})
