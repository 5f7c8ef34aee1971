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
