"""Write docs/configuration.md from the typed configuration (``spexphormer.config``).

Every key of every section, with its type, its default and its meaning (the attribute docstring
under the field in ``config.py``), so that the reference cannot drift from the code. ``make docs``
regenerates the page through ``docs/hooks.py``; ``tests/test_docs.py`` checks that the committed
page is up to date and covers every key.

    python docs/gen_config_reference.py          # rewrite docs/configuration.md
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "configuration.md"

INTRO = """\
# Configuration reference

Generated from the typed configuration (`src/spexphormer/config.py`) by
`docs/gen_config_reference.py`; do not edit by hand.

A configuration has four sections. Each dataset has a preset (the hyper-parameters released with
the authors' code, `spexphormer/presets.py`; [the method](method.md) §5), the local-attention model
has presets of its own ([its page](local-attention.md)), and a graph of your own gets the
local-attention model's default. On top of the preset, a `--config FILE` (YAML or JSON, e.g. from
`spexphormer config --format yaml`) and then `--set section.key=value` override any key; an
unknown key or a bad value is one `error:` line. `spexphormer config --dataset NAME` prints the
resolved values. The defaults below are the dataclasses' own; a preset changes many of them.

```bash
spexphormer run --dataset tolokers --set stage2.ks=12,10,10,10 --set stage2.sampler=topk \\
                --set stage1.temp_ratio=1.0 --seeds 3
```
"""


def attribute_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (PEP 257 attribute docstrings)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def _type_name(hint) -> str:
    if typing.get_origin(hint) is tuple:
        return f"tuple[{typing.get_args(hint)[0].__name__}, ...]"
    return getattr(hint, "__name__", str(hint))


def _default(f: dataclasses.Field) -> str:
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:_}".replace("_", ",") if isinstance(value, int) else str(value)


def sections() -> list[tuple[str, type]]:
    from spexphormer.config import Config
    hints = typing.get_type_hints(Config)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Config)]


def render() -> str:
    """The whole page."""
    out = [INTRO]
    for name, cls in sections():
        docs, hints = attribute_docs(cls), typing.get_type_hints(cls)
        summary = " ".join(inspect.cleandoc(cls.__doc__ or "").split())
        out += [f"## `{name}`", "", summary, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            meaning = docs.get(f.name, "").replace("|", "\\|")
            out.append(f"| `{name}.{f.name}` | `{_type_name(hints[f.name])}` | `{_default(f)}` | {meaning} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    PAGE.write_text(render())
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
