"""Issue 23: ``predict`` and the files it reads. Node lists, hand-edited checkpoints whose
checksum was recomputed, non-finite outputs on a grown graph, and a run folder left by a kill
between the scores and the estimator file."""

import os
import warnings

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from spexphormer.cli import main
from spexphormer.data import load_graph
from spexphormer.errors import CheckpointError, DataError
from spexphormer.pipeline.grown import estimator_path
from spexphormer.pipeline.predict import predict
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import FAST, make_toy_graph, write_graph_file


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-seed run on the toy graph, and a grown graph file of the same kind."""
    folder = tmp_path_factory.mktemp("trained")
    graph = write_graph_file(folder / "toy.pt")
    assert main(["run", "--data", str(graph), "--out", str(folder / "out"), "--seeds", "1", "--model", "spexphormer", *FAST]) == 0
    grown = write_graph_file(folder / "grown.pt", num_nodes=320, seed=1)
    return {"folder": folder, "graph": graph, "checkpoint": folder / "out" / "seed0" / "model.pt", "grown": grown}


def _predict(trained, tmp_path, *extra):
    return main(["predict", "--checkpoint", str(trained["checkpoint"]), "--out", str(tmp_path / "p.csv"), *extra])


# -- node lists -------------------------------------------------------------------------------------

def test_a_node_given_twice_is_one_line(trained, tmp_path, capsys):
    assert _predict(trained, tmp_path, "--nodes", "3,1,3") == 2
    assert _error_line(capsys) == "error: node 3 is given twice: give each node id once"


def test_a_non_utf8_node_file_is_one_line(trained, tmp_path, capsys):
    (tmp_path / "nodes.txt").write_bytes(b"1\n\xff\xfe2\n")
    assert _predict(trained, tmp_path, "--nodes", f"@{tmp_path / 'nodes.txt'}") == 2
    assert _error_line(capsys) == f"error: node id file {tmp_path / 'nodes.txt'} is not UTF-8 text (byte 2)"


def test_nodes_from_dev_zero_are_refused_without_reading(trained, tmp_path, capsys):
    assert _predict(trained, tmp_path, "--nodes", "@/dev/zero") == 2
    assert _error_line(capsys) == "error: node id file /dev/zero is a character device, not a regular file"


def test_node_ids_beyond_int64_on_the_grown_path_are_one_line(trained, tmp_path, capsys):
    assert _predict(trained, tmp_path, "--data", str(trained["grown"]), "--nodes", f"1,{2**70}") == 2
    assert f"node ids must be in 0..319, got {2**70}" in _error_line(capsys)


def test_a_node_file_with_good_ids_still_works(trained, tmp_path, capsys):
    (tmp_path / "nodes.txt").write_text("4\n2\n")
    assert _predict(trained, tmp_path, "--nodes", f"@{tmp_path / 'nodes.txt'}") == 0
    assert [line.split(",")[0] for line in (tmp_path / "p.csv").read_text().splitlines()[1:]] == ["4", "2"]


# -- hand-edited checkpoints with a valid checksum --------------------------------------------------

def _resealed(trained, tmp_path, edit):
    payload = load_checkpoint(trained["checkpoint"])
    edit(payload)
    return save_checkpoint(tmp_path / "edited.pt", payload["kind"], payload["model_args"], payload["state_dict"],
                           payload["fingerprint"], payload["config"], payload["meta"])


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["model_args"].update(surprise=1), "unknown model argument 'surprise' for Spexphormer"),
    (lambda p: p["model_args"].update(hidden="wide"), "its model arguments do not build a Spexphormer"),
    (lambda p: p["model_args"].update(hidden=[1, 2]), "its model arguments do not build a Spexphormer"),
    (lambda p: p["model_args"].update(hidden={"a": 1}), "model argument 'hidden' is a dict, not a plain value"),
    (lambda p: p["model_args"].update(hidden=2**20), "more than this machine's memory"),
    (lambda p: p["model_args"].update(hidden=64), "weights do not fit the model"),
    (lambda p: p["model_args"].pop("in_dim"), "its model arguments do not build a Spexphormer"),
    (lambda p: p["meta"].update(seed="zero"), "meta 'seed' is a str, not a int"),
    (lambda p: p["meta"].update(source="toy.pt"), "meta 'source' is a str, not a dict"),
])
def test_hand_edited_checkpoints_are_one_line(trained, tmp_path, capsys, edit, message):
    edited = _resealed(trained, tmp_path, edit)
    assert main(["predict", "--checkpoint", str(edited), "--data", str(trained["graph"]),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "p.csv").exists()


def test_an_edited_estimator_record_is_one_line(trained, tmp_path):
    edited = _resealed(trained, tmp_path, lambda p: p["meta"]["estimator"]["model_args"].update(heads="x"))
    with pytest.raises(CheckpointError, match="estimator: its model arguments do not build"):
        predict(edited, data=load_graph(path=trained["grown"]))


# -- outputs ----------------------------------------------------------------------------------------

def test_grown_features_far_out_of_range_give_one_line_not_nan(trained, tmp_path, capsys):
    data = torch.load(trained["grown"], weights_only=False)
    torch.save(Data(**{k: (v * 1e30 if k == "x" else v) for k, v in data.items()}), tmp_path / "huge.pt")
    assert _predict(trained, tmp_path, "--data", str(tmp_path / "huge.pt")) == 2
    assert "the model's outputs are NaN or infinite for" in _error_line(capsys)
    assert not (tmp_path / "p.csv").exists()


# -- a kill between the scores and the estimator file -----------------------------------------------

def test_scores_without_their_estimator_are_made_again(tmp_path, graph_file, capsys):
    out = tmp_path / "out"
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 0
    (scores,) = out.glob("scores-*.pt")
    os.remove(estimator_path(scores))  # what a kill between the two writes leaves
    capsys.readouterr()
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 0
    assert "has no estimator file beside it" in capsys.readouterr().err
    assert estimator_path(scores).is_file()
    assert load_checkpoint(out / "seed0" / "model.pt")["meta"]["estimator"] is not None
    grown = write_graph_file(tmp_path / "grown.pt", num_nodes=320, seed=1)
    result = predict(out / "seed0" / "model.pt", data=load_graph(path=grown))
    assert result["nodes"].tolist() == list(range(300, 320)) and bool(torch.isfinite(result["logits"]).all())


# -- the one-class warning, once --------------------------------------------------------------------

def test_a_one_class_training_set_warns_once_per_run(tmp_path, capsys):
    data = make_toy_graph(task="multiclass")
    y = data.y.clone()
    y[data.train_mask] = 1
    torch.save(Data(x=data.x, y=y, edge_index=data.edge_index, train_mask=data.train_mask, val_mask=data.val_mask,
                    test_mask=data.test_mask), tmp_path / "one.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as a user's environment may: the count is ours, not the filter's
        assert main(["run", "--data", str(tmp_path / "one.pt"), "--out", str(tmp_path / "o"), "--seeds", "1",
                     *FAST]) == 0
    err = capsys.readouterr().err
    assert err.count("every training node has label 1") == 1, err


def test_numpy_labels_of_one_class_val_set_are_refused_under_rocauc(tmp_path):
    n = 20
    y = np.arange(n) % 2
    val = np.zeros(n, bool)
    val[[0, 2]] = True  # both label 0
    train, test = ~val & (np.arange(n) < 14), ~val & (np.arange(n) >= 14)
    np.savez(tmp_path / "g.npz", node_features=np.ones((n, 2)), node_labels=y,
             edges=np.array([[i, (i + 1) % n] for i in range(n)]), train_masks=train, val_masks=val, test_masks=test)
    with pytest.raises(DataError, match="every validation node has label 0: ROC-AUC is undefined"):
        load_graph(path=tmp_path / "g.npz")
