"""Items 5 and 6 of issue 15: legal but unusual inputs work or fail in one line; nonsense is refused."""

import json
import math

import numpy as np
import pytest
import torch

from spexphormer.cli import main
from spexphormer.presets import preset
from spexphormer.data import load_graph
from spexphormer.data.validate import check_split
from spexphormer.errors import DataError
from spexphormer.nn.norms import BatchNorm
from spexphormer.pipeline.stage1 import estimate
from spexphormer.pipeline.stage2 import train_wide
from spexphormer.utils.io import save_json
from tests.helpers import make_toy_graph
from tests.helpers import FAST


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# -- item 5: crashes on legal input --------------------------------------------------------------

def test_batchnorm_takes_a_one_row_training_batch():
    norm = BatchNorm(4).train()
    norm(torch.randn(8, 4))  # some running statistics
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    row = torch.randn(1, 4)
    expected = (row - mean) / torch.sqrt(var + norm.eps)
    assert torch.allclose(norm(row), expected, atol=1e-6)
    assert torch.equal(norm.running_mean, mean)  # a single row does not update them
    x = torch.randn(8, 4)
    ref = torch.nn.BatchNorm1d(4).train()
    assert torch.equal(BatchNorm(4).train()(x), ref(x))  # otherwise exactly BatchNorm1d


def test_stage2_with_a_last_batch_of_one_node(toy_graph):
    cfg = preset(None).override(["stage1.epochs=2", "stage2.epochs=2", "graph.exp_deg=2"])
    scores = estimate(toy_graph, cfg, progress=False).scores
    n_train = int(toy_graph.train_mask.sum())
    cfg = cfg.override([f"stage2.batch_size={n_train - 1}"])  # batches of n - 1 nodes and of 1 node
    result = train_wide(toy_graph, scores, cfg, progress=False)
    assert math.isfinite(result.fit.val)


def _tiny(path, n: int, masks, classes: int = 2):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    np.savez(path, node_features=x, node_labels=np.arange(n) % classes, edges=np.array([[i, (i + 1) % n] for i in range(n)]),
             train_masks=np.array(masks[0]), val_masks=np.array(masks[1]), test_masks=np.array(masks[2]))
    return path


def test_a_three_node_graph_runs_end_to_end(tmp_path, capsys):
    path = _tiny(tmp_path / "three.npz", 3, ([1, 0, 0], [0, 1, 0], [0, 0, 1]), classes=3)  # accuracy
    assert main(["run", "--data", str(path), "--out", str(tmp_path / "o"), "--seeds", "1", *FAST]) == 0
    json.loads((tmp_path / "o" / "results.json").read_text())


def test_a_binary_graph_with_a_one_class_validation_set_is_refused(tmp_path, capsys):
    """Issue 23: ROC-AUC of one class is undefined; it used to come out as NaN without a word."""
    path = _tiny(tmp_path / "three.npz", 3, ([1, 0, 0], [0, 1, 0], [0, 0, 1]))  # binary: ROC-AUC
    assert main(["run", "--data", str(path), "--out", str(tmp_path / "o"), "--seeds", "1", *FAST]) == 2
    assert "every validation node has label 1: ROC-AUC is undefined on one class" in _error_line(capsys)
    assert not (tmp_path / "o").exists()  # refused before any work


@pytest.mark.parametrize("n, masks", [(1, ([1], [0], [0])), (2, ([1, 0], [0, 1], [0, 0]))])
def test_one_and_two_node_graphs_fail_in_one_line(tmp_path, capsys, n, masks):
    path = _tiny(tmp_path / "g.npz", n, masks)
    assert main(["run", "--data", str(path), "--out", str(tmp_path / "o"), "--seeds", "1", *FAST]) == 2
    assert "no labelled node in" in _error_line(capsys)


@pytest.mark.parametrize("key, what", [("node_features", "node features must be numeric"),
                                       ("node_labels", "labels must be numeric"),
                                       ("edges", "edge indices must be integers")])
def test_string_arrays_are_one_line_errors(tmp_path, capsys, key, what):
    arrays = {"node_features": np.ones((4, 2)), "node_labels": np.array([0, 1, 0, 1]),
              "edges": np.array([[0, 1], [1, 2], [2, 3]])}
    arrays[key] = arrays[key].astype(str)
    np.savez(tmp_path / "s.npz", **arrays)
    assert main(["info", "--data", str(tmp_path / "s.npz")]) == 2
    assert what in _error_line(capsys)


def test_predict_nodes_beyond_int64_is_one_line(tmp_path, capsys, graph_file):  # noqa: F811
    out = tmp_path / "o"
    assert main(["train", "--model", "exphormer", "--data", str(graph_file), "--out", str(out), "--seeds", "1",
                 *FAST]) == 0
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--nodes", f"1,{2**70}",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert f"node ids must be in 0..299, got {2**70}" in _error_line(capsys)


# -- item 6: silent nonsense ---------------------------------------------------------------------

@pytest.mark.parametrize("key", ["train", "val", "test"])
def test_an_all_false_mask_is_refused(key):
    data = make_toy_graph()
    setattr(data, f"{key}_mask", torch.zeros(data.num_nodes, dtype=torch.bool))
    with pytest.raises(DataError, match=f"no labelled node in {key}_mask"):
        check_split(data)


@pytest.mark.parametrize("a, b", [("train", "val"), ("train", "test"), ("val", "test")])
def test_overlapping_sets_are_refused(a, b):
    data = make_toy_graph()
    first = int(getattr(data, f"{b}_mask").nonzero()[0])
    getattr(data, f"{a}_mask")[first] = True
    with pytest.raises(DataError, match=f"1 nodes are in both {a}_mask and {b}_mask"):
        check_split(data)


def test_a_single_class_training_set_warns(tmp_path, capsys):
    n = 30
    y = np.arange(n) % 3
    train = np.zeros(n, bool)
    train[y == 1] = True
    val, test = (y == 0), (y == 2)
    np.savez(tmp_path / "one.npz", node_features=np.random.default_rng(0).normal(size=(n, 3)), node_labels=y,
             edges=np.array([[i, (i + 1) % n] for i in range(n)]), train_masks=train, val_masks=val, test_masks=test)
    with pytest.warns(UserWarning, match="every training node has label 1"):
        load_graph(path=tmp_path / "one.npz")
    assert main(["info", "--data", str(tmp_path / "one.npz")]) == 0
    assert "warning: one: every training node has label 1" in capsys.readouterr().err


def test_results_json_is_strict(tmp_path):
    path = save_json({"val": {"mean": float("nan"), "per_seed": [0.5, float("inf")]}}, tmp_path / "r.json")
    text = path.read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}")) == \
        {"val": {"mean": None, "per_seed": [0.5, None]}}
