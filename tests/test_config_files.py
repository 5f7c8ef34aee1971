"""Configs as files: `config --format yaml|json` output read back by `--config` gives the same config."""

from __future__ import annotations

import json

import pytest
import yaml

from spexphormer.cli import main
from spexphormer.presets import preset
from spexphormer.config_files import apply_config_file, dump_config, read_config_file
from spexphormer.errors import ConfigError


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("fmt,suffix", [("yaml", ".yaml"), ("json", ".json"), ("yaml", ".yml")])
def test_cli_round_trip(fmt, suffix, tmp_path, capsys):
    assert main(["config", "--dataset", "tolokers", "--set", "stage2.ks=3,4,5,6", "--set", "run.threads=1",
                 "--set", "stage2.keep_graph_edges=true", "--format", fmt]) == 0
    path = tmp_path / f"x{suffix}"
    path.write_text(capsys.readouterr().out)
    # applied over another preset's defaults, every value comes from the file
    assert main(["config", "--preset", "actor", "--config", str(path), "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    expected = preset("tolokers").override(["stage2.ks=3,4,5,6", "run.threads=1", "stage2.keep_graph_edges=true"])
    assert again == expected.to_dict()
    assert apply_config_file(preset("actor"), path) == expected


def test_yaml_is_plain_data_and_partial_files_keep_the_preset(tmp_path):
    text = dump_config(preset("minesweeper"), "yaml")
    assert yaml.safe_load(text)["stage2"]["ks"] == [12, 5, 5, 5]
    part = tmp_path / "p.yaml"
    part.write_text("stage2:\n  epochs: 7\n  lr: 1e-3\n")
    cfg = apply_config_file(preset("minesweeper"), part)
    assert cfg.stage2.epochs == 7 and cfg.stage2.lr == 0.001 and cfg.stage2.ks == (12, 5, 5, 5)
    empty = tmp_path / "e.yaml"
    empty.write_text("# nothing\n")
    assert read_config_file(empty) == {}


@pytest.mark.parametrize("text,message", [
    ("stage2:\n  nope: 1\n", "unknown config key 'stage2.nope'"),
    ("stages:\n  epochs: 1\n", "unknown config section 'stages'"),
    ("stage2:\n  epochs: many\n", "stage2.epochs: cannot read"),
    ("stage2: [1, 2]\n", "must hold {section: {key: value}}"),
    ("stage2:\n  epochs: 1\n bad: [\n", "invalid YAML at line"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "invalid YAML"),
])
def test_bad_files_are_one_line_errors(text, message, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="."):
        apply_config_file(preset(None), path)
    assert main(["config", "--config", str(path)]) == 2
    assert message in _error_line(capsys)


def test_missing_file_and_bad_json(tmp_path, capsys):
    assert main(["config", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read config file" in _error_line(capsys)
    bad = tmp_path / "bad.json"
    bad.write_text("{stage2: 1}")
    assert main(["config", "--config", str(bad)]) == 2
    assert "cannot read config file" in _error_line(capsys)
