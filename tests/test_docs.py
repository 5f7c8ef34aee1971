"""The documentation keeps up with the code: the configuration reference is generated from the
typed config and covers every key; the README stays a front door; links to results resolve."""

import dataclasses
import importlib.util
import re
from pathlib import Path

from spexphormer.config import Config

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_covers_every_key_with_type_default_and_meaning():
    page = _generator().render()
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(r"^\| `([a-z0-9_]+\.[a-z0-9_]+)` \| `([^`]+)` \| `([^`]*)` \| (.*) \|$", page, re.M)}
    keys = {f"{section}.{key}" for section, values in Config().to_dict().items() for key in values}
    assert set(rows) == keys
    assert all(kind and default and len(meaning) > 10 for kind, default, meaning in rows.values())
    assert rows["stage2.ks"][:2] == ("tuple[int, ...]", "12,5,5,5")


def test_every_config_field_has_a_meaning_in_its_docstring():
    gen = _generator()
    for _, section in gen.sections():
        documented = gen.attribute_docs(section)
        assert [f.name for f in dataclasses.fields(section) if f.name not in documented] == []


def test_committed_config_reference_is_up_to_date():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == _generator().render(), "run: python docs/gen_config_reference.py"


def test_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_links_to_results_and_pages_resolve():
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
