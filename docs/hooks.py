"""MkDocs hooks: the pages and files of the site that live outside docs/.

* ``configuration.md`` is regenerated from the typed config on every build (docs/gen_config_reference.py).
* ``CHANGELOG.md`` (at the repository root) becomes the page ``changelog.md``.
* ``benchmarks/results/`` (the JSON, PNG and text files the pages cite) is copied into the site.
* The docstrings' Sphinx roles (PyG's style: ``:class:`~a.B```, ``:math:`x```) show as code.

The pages link those files as ``../benchmarks/results/...`` and ``../CHANGELOG.md`` so that the
links also work on a repository browser; here they are rewritten to the copies in the site.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
SKIP = {".tmp", ".log"}
SKIP_NAMES = {"REPORT_quick.md"}  # smoke numbers, not results
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|math):<code>(~?)([^<]*)</code>")
LINK = re.compile(r"\]\(\.\./(benchmarks/results/[^)\s]*|CHANGELOG\.md)([)#\s])")


def _config_reference() -> str:
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render()


def on_files(files, config):
    changelog = (ROOT / "CHANGELOG.md").read_text()
    files.append(File.generated(config, "changelog.md", content=changelog.replace("](docs/", "](")))
    for path in sorted((ROOT / RESULTS).rglob("*")):
        rel = path.relative_to(ROOT)
        if (path.is_file() and path.suffix not in SKIP and path.name not in SKIP_NAMES
                and rel.parts[2] not in ("runs", "logs")):
            files.append(File.generated(config, rel.as_posix(), abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "configuration.md":
        return _config_reference()
    return LINK.sub(lambda m: f"]({'changelog.md' if m.group(1) == 'CHANGELOG.md' else m.group(1)}{m.group(2)}",
                    markdown)


def on_page_content(html, page, config, files):
    return ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
