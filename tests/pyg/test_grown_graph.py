"""Predictions on a graph that has grown: train on the "before" part, predict the "after" part's new nodes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
import torch
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from spexphormer.cli import main
from spexphormer.errors import CheckpointError, DataError
from spexphormer.pipeline.grown import check_features, predict_grown
from tests.helpers import make_toy_graph

BEFORE = 300
FAST = ["--set", "stage1.epochs=5", "--set", "stage2.epochs=15", "--set", "graph.exp_deg=2",
        "--set", "stage2.batch_size=128", "--set", "run.threads=1", "--quiet"]


def _save(data: Data, path):
    torch.save(Data(x=data.x, y=data.y, edge_index=data.edge_index, train_mask=data.train_mask,
                    val_mask=data.val_mask, test_mask=data.test_mask), path)
    return str(path)


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grown")
    after = make_toy_graph(num_nodes=400, num_edges=3200, seed=1)
    keep = torch.arange(after.num_nodes) < BEFORE
    edges, _ = subgraph(keep, after.edge_index, num_nodes=after.num_nodes)
    before = Data(x=after.x[:BEFORE], y=after.y[:BEFORE], edge_index=edges,
                  **{k: after[k][:BEFORE] for k in ("train_mask", "val_mask", "test_mask")})
    for k in ("train_mask", "val_mask", "test_mask"):  # the new nodes are in no split
        after[k] = after[k] & keep
    paths = {"before": _save(before, tmp / "before.pt"), "after": _save(after, tmp / "after.pt"), "tmp": tmp}
    assert main(["run", "--data", paths["before"], "--seeds", "1", "--out", str(tmp / "run"), *FAST]) == 0
    return paths, after


@pytest.mark.slow
def test_predict_scores_the_new_nodes_of_the_grown_graph(trained, capsys):
    paths, after = trained
    out = paths["tmp"] / "new.csv"
    ckpt = str(paths["tmp"] / "run" / "seed0" / "model.pt")
    assert main(["predict", "--checkpoint", ckpt, "--data", paths["after"], "--out", str(out)]) == 0
    assert "100 nodes" in capsys.readouterr().out
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table[:, 0].astype(int).tolist() == list(range(BEFORE, 400))
    auc = roc_auc_score(after.y[BEFORE:].numpy(), table[:, 2])
    print(f'AUC on the new nodes: {auc:.4f}')
    # chance is 0.5; the new nodes were never seen in training. Measured (stage1/graph/run seed
    # 0..9, 1 thread; seeds 0..4 with ATEN_CPU_CAPABILITY=default + MKL_ENABLE_INSTRUCTIONS=AVX2;
    # seeds 0..2 with 2 threads; 18 runs): min 0.795, mean 0.848, max 0.869; with lr 1e-12 (learned
    # nothing): 0.32 (seed 0). With 100 new nodes, chance alone reaches ~0.65 now and then (on the
    # 60 test nodes of the same toy graph an untrained model reached 0.60 in 4 seeds), so the bound
    # is 0.7: 0.095 below the lowest trained run.
    assert auc > 0.7, auc
    # explicit node ids on the grown graph, old ones included
    assert main(["predict", "--checkpoint", ckpt, "--data", paths["after"], "--nodes", "0,350",
                 "--out", str(out)]) == 0
    assert np.loadtxt(out, delimiter=",", skiprows=1)[:, 0].astype(int).tolist() == [0, 350]


@pytest.mark.slow
def test_features_of_another_width_are_refused(trained, capsys):
    paths, after = trained
    narrow = after.clone()
    narrow.x = after.x[:, :5]
    ckpt = str(paths["tmp"] / "run" / "seed0" / "model.pt")
    assert main(["predict", "--checkpoint", ckpt, "--data", _save(narrow, paths["tmp"] / "narrow.pt"),
                 "--out", str(paths["tmp"] / "n.csv")]) == 2
    assert "the graph has 5 features per node, the checkpoint was trained on 6" in _error_line(capsys)
    assert not (paths["tmp"] / "n.csv").exists()


def test_feature_kind_and_missing_estimator_are_refused():
    with pytest.raises(DataError, match="binary"):
        check_features({"width": 2, "kind": "binary"}, torch.tensor([[0.0, 0.5]]))
    check_features({"width": 2, "kind": "real"}, torch.tensor([[0.0, 1.0]]))
    ckpt = {"kind": "spexphormer", "meta": {}, "model_args": {"in_dim": 6}}
    with pytest.raises(CheckpointError, match="holds no estimator"):
        predict_grown(ckpt, make_toy_graph())


@pytest.mark.slow
def test_whole_graph_inputs_are_recomputed_on_the_grown_graph(trained, capsys):
    """A model trained with degree and propagated inputs reads them from the graph it predicts on."""
    paths, after = trained
    run = paths["tmp"] / "run-features"
    assert main(["run", "--data", paths["before"], "--model", "local-attention", "--seeds", "1", "--out", str(run),
                 *FAST, "--set", "stage2.degree_feature=true", "--set", "stage2.feature_hops=2"]) == 0
    out = paths["tmp"] / "new-features.csv"
    assert main(["predict", "--checkpoint", str(run / "seed0" / "model.pt"), "--data", paths["after"],
                 "--out", str(out)]) == 0
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table[:, 0].astype(int).tolist() == list(range(BEFORE, 400))
    # Measured as above (18 runs): min 0.775, mean 0.824, max 0.861; learned nothing: 0.46 (seed 0).
    assert roc_auc_score(after.y[BEFORE:].numpy(), table[:, 2]) > 0.7
