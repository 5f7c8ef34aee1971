"""Files written by an earlier version (tests/fixtures/round2, made by v0.1.0 before the package was
restructured) still load and give the same predictions."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from spexphormer.cli import main
from spexphormer.scores import Scores

FIXTURES = Path(__file__).parent / "fixtures" / "round2"


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_old_scores_file_loads():
    scores = Scores.load(FIXTURES / "scores.pt")
    assert scores.num_layers >= 1 and scores.scores.shape[1] == scores.graph.num_edges
    assert scores.split is not None


def test_old_checkpoint_predicts_what_it_predicted(tmp_path):
    out = tmp_path / "pred.csv"
    assert main(["predict", "--checkpoint", str(FIXTURES / "model.pt"), "--data", str(FIXTURES / "toy.pt"),
                 "--scores", str(FIXTURES / "scores.pt"), "--out", str(out)]) in (0, None)
    got, want = _read(out), _read(FIXTURES / "expected_predictions.csv")
    assert got[0] == want[0] and len(got) == len(want) == 121
    for g, w in zip(got[1:], want[1:]):
        assert g[:2] == w[:2]
        assert float(g[2]) == pytest.approx(float(w[2]), abs=1e-5)


def test_version_3_layout_upgrades_to_the_same_function(tmp_path):
    """A version-3 estimator (per-type tables under their old names, a bias before the pre-layer's
    batch norm) loads as the "table" form and computes what it computed: in evaluation
    BN(Wx + b) with running mean m + b is BN(Wx) with running mean m."""
    import torch

    from spexphormer.nn import AttentionScoreEstimator
    from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    args = dict(in_dim=5, out_dim=1, hidden=4, num_layers=2, pre_layers=1, type_terms="table")
    model = AttentionScoreEstimator(**args)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
        model.encoder.pre[0].norm.running_mean.normal_()
        model.encoder.pre[0].norm.running_var.uniform_(0.5, 2.0)
    bias = torch.randn(4)
    old = {}
    for key, value in model.state_dict().items():
        key = key.replace("attn.types.gate", "attn.type_scale").replace("attn.types.bias", "attn.type_bias")
        old[key] = value + bias if key == "encoder.pre.0.norm.running_mean" else value
    old["encoder.pre.0.lin.bias"] = bias
    old_args = {k: v for k, v in args.items() if k != "type_terms"}
    path = save_checkpoint(tmp_path / "old.pt", "estimator", old_args, old, "fp", {}, {})
    payload = torch.load(path, weights_only=False)
    payload["version"] = 3  # as the previous release wrote it (the checksum does not cover the version key)
    from spexphormer.utils.checksum import content_digest, KEY
    payload.pop(KEY)
    payload[KEY] = content_digest(payload)
    torch.save(payload, path)

    ckpt = load_checkpoint(path)
    assert ckpt["model_args"]["type_terms"] == "table"
    loaded = AttentionScoreEstimator(**ckpt["model_args"])
    loaded.load_state_dict(ckpt["state_dict"])
    x = torch.randn(7, 5)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 1], [1, 2, 3, 4, 5, 6, 0, 0]])
    edge_type = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x, edge_index, edge_type), model(x, edge_index, edge_type))
