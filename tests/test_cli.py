"""The command line: each command runs, and bad input gives one line `error: ...` and exit 2."""

import json
import re
import subprocess
import sys

import pytest

from spexphormer.cli import main
from tests.helpers import FAST, make_toy_graph


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_run_train_estimate_predict_round_trip(graph_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--data", str(graph_file), "--seeds", "1", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("model: local-attention (the default for a graph of your own")
    assert "local-attention (1 seeds)" in printed and "results:" in printed
    results = json.loads((out / "results.json").read_text())
    scores = next(out.glob("scores-*.pt"))
    assert main(["train", "--data", str(graph_file), "--scores", str(scores), "--seeds", "1",
                 "--out", str(tmp_path / "t"), *FAST]) == 0
    assert main(["train", "--data", str(graph_file), "--model", "exphormer", "--seeds", "1",
                 "--out", str(tmp_path / "x"), *FAST]) == 0
    assert "exphormer" in capsys.readouterr().out
    assert main(["estimate", "--data", str(graph_file), "--out", str(out), *FAST]) == 0
    assert "already exist" in capsys.readouterr().out
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--nodes", "1,2,3",
                 "--out", str(pred)]) == 0
    assert len(pred.read_text().splitlines()) == 4
    assert results["metric"] == "rocauc"


def test_config_prints_and_rejects_unknown_keys(capsys):
    assert main(["config", "--dataset", "tolokers", "--set", "stage2.batch_size=2000"]) == 0
    out = capsys.readouterr().out
    assert "batch_size = 2000" in out and "ks = 12,10,10,10" in out
    assert main(["config", "--set", "stage2.nope=1"]) == 2
    assert "unknown config key" in _error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["info", "--data", "/nonexistent/graph.npz"], "graph.npz"),
    (["run", "--dataset", "no-such-dataset", "--quiet"], "no-such-dataset"),
    (["train", "--dataset", "cora"], "--scores"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    assert message in _error_line(capsys)


def test_corrupt_scores_and_checkpoint(graph_file, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip file at all")
    assert main(["train", "--data", str(graph_file), "--scores", str(bad), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert re.search("truncated or corrupt|not a spexphormer scores file", _error_line(capsys))
    assert main(["predict", "--checkpoint", str(bad), "--out", str(tmp_path / "p.csv")]) == 2
    assert re.search("truncated or corrupt|not a spexphormer checkpoint", _error_line(capsys))


def test_console_script_entry_point_has_help():
    proc = subprocess.run([sys.executable, "-m", "spexphormer", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("datasets", "info", "estimate", "train", "run", "predict", "analyze", "config"):
        assert command in proc.stdout


@pytest.fixture
def two_split_file(tmp_path):
    """A Platonov .npz with two official splits whose training sets differ."""
    import numpy as np
    data = make_toy_graph()
    n = data.num_nodes
    g = np.random.default_rng(0)
    masks = np.zeros((3, 2, n), dtype=bool)
    for s in range(2):
        perm = g.permutation(n)
        for m, (a, b) in enumerate([(0, 150), (150, 225), (225, n)]):
            masks[m, s, perm[a:b]] = True
    path = tmp_path / "two_splits.npz"
    np.savez(path, node_features=data.x.numpy(), node_labels=data.y.numpy(), edges=data.edge_index.T.numpy(),
             train_masks=masks[0], val_masks=masks[1], test_masks=masks[2])
    return path


@pytest.mark.slow  # end to end: several stages and runs
def test_scores_are_never_reused_across_splits(two_split_file, tmp_path, capsys):
    out = tmp_path / "out"
    for split in ("0", "1"):
        assert main(["run", "--data", str(two_split_file), "--split-index", split, "--seeds", "1",
                     "--out", str(out), *FAST]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["stages"]["stage1"]["reused"] is None  # stage 1 trained on this split's labels
    assert len(list(out.glob("scores-*.pt"))) == 2
    assert main(["run", "--data", str(two_split_file), "--split-index", "1", "--seeds", "1",
                 "--out", str(out), *FAST]) == 0
    assert json.loads((out / "results.json").read_text())["stages"]["stage1"]["reused"]  # same split: reused


@pytest.mark.slow  # end to end: several stages and runs
def test_train_and_predict_refuse_another_split(two_split_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--data", str(two_split_file), "--split-index", "0", "--seeds", "1",
                 "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    scores = next(out.glob("scores-*.pt"))
    assert main(["train", "--data", str(two_split_file), "--split-index", "1", "--scores", str(scores),
                 "--seeds", "1", "--out", str(tmp_path / "t"), *FAST]) == 2
    line = _error_line(capsys)
    assert "another split" in line and "file mask 0 of 2" in line and "file mask 1 of 2" in line
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--data", str(two_split_file),
                 "--split-index", "1", "--out", str(tmp_path / "p.csv")]) == 2
    line = _error_line(capsys)
    assert "file mask 0 of 2" in line and "file mask 1 of 2" in line
    assert not (tmp_path / "p.csv").exists()
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--data", str(two_split_file),
                 "--split-index", "0", "--out", str(tmp_path / "p.csv")]) == 0


def test_config_of_an_unknown_dataset_is_an_error_and_aliases_get_their_preset(capsys):
    assert main(["config", "--dataset", "nope"]) == 2
    assert "unknown dataset" in _error_line(capsys)
    assert main(["config", "--dataset", "film"]) == 0  # an alias of actor
    assert "ks = 2,2,2" in capsys.readouterr().out


def test_a_large_graph_of_your_own_gets_the_large_graph_preset(graph_file, tmp_path, capsys, monkeypatch):
    from spexphormer import presets

    def config_of(*extra):
        assert main(["config", "--data", str(graph_file), "--format", "json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    small = config_of()
    large_preset = presets.preset(presets.LARGE_GRAPH_PRESET).to_dict()
    monkeypatch.setattr(presets, "LARGE_GRAPH_NODES", 100)  # the toy graph (300 nodes) counts as large
    large = config_of()
    assert small["stage1"]["num_layers"] == presets.preset(None).stage1.num_layers
    assert large["stage1"] == large_preset["stage1"] and large["graph"] == large_preset["graph"]
    assert large["stage2"]["model"] == "local-attention"  # a graph of your own keeps its default model
    assert config_of("--model", "spexphormer")["stage2"] == large_preset["stage2"]
    assert config_of("--preset", "cora")["stage1"]["num_layers"] == presets.preset("cora").stage1.num_layers
    assert config_of("--set", "stage1.epochs=3")["stage1"]["epochs"] == 3  # overrides still apply
    out = tmp_path / "run"
    assert main(["run", "--data", str(graph_file), "--model", "spexphormer", "--seeds", "1", "--out", str(out),
                 "--quiet", "--set", "stage1.epochs=1", "--set", "stage2.epochs=1"] + FAST) == 0
    said = capsys.readouterr().out
    assert f"preset: {presets.LARGE_GRAPH_PRESET} (the large-graph preset" in said
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["stage1"]["num_layers"] == large_preset["stage1"]["num_layers"]
