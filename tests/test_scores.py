import pytest
import torch

from spexphormer.errors import ScoresMismatch
from spexphormer.graph import split_fingerprint
from spexphormer.scores import Scores
from tests.helpers import toy_scores


def test_round_trip(tmp_path):
    s = toy_scores()
    s.save(tmp_path / "s.pt")
    t = Scores.load(tmp_path / "s.pt", fingerprint="abc123")
    assert torch.equal(t.scores, s.scores) and torch.equal(t.graph.edge_index, s.graph.edge_index)
    assert torch.equal(t.graph.edge_type, s.graph.edge_type) and t.temperature == 0.5
    assert t.config == s.config and t.metrics == {"val": 0.7}


def test_other_graph_truncated_and_foreign_files_are_rejected(tmp_path):
    path = toy_scores().save(tmp_path / "s.pt")
    with pytest.raises(ScoresMismatch, match="another graph"):
        Scores.load(path, fingerprint="ffff")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ScoresMismatch, match="truncated or corrupt"):
        Scores.load(tmp_path / "cut.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(ScoresMismatch, match="not a spexphormer scores file"):
        Scores.load(tmp_path / "other.pt")
    with pytest.raises(ScoresMismatch, match="does not exist"):
        Scores.load(tmp_path / "missing.pt")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = toy_scores().save(tmp_path / "s.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        toy_scores().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.pt"]  # no temporary left behind


def test_written_files_follow_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = toy_scores().save(tmp_path / "s.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def _split(train_nodes, n=30, name="toy, official mask 0 of 2"):
    train, val = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    train[train_nodes], val[25:] = True, True
    return {"fingerprint": split_fingerprint(train, val), "description": name}


def test_a_scores_file_of_another_split_is_refused(tmp_path):
    s = toy_scores()
    s.split = _split([0, 1, 2])
    path = s.save(tmp_path / "s.pt")
    assert Scores.load(path, "abc123", _split([0, 1, 2])).split == s.split
    with pytest.raises(ScoresMismatch, match="another split") as err:
        Scores.load(path, "abc123", _split([0, 1, 3], name="toy, official mask 1 of 2"))
    assert "official mask 0 of 2" in str(err.value) and "official mask 1 of 2" in str(err.value)


def test_a_scores_file_without_a_split_is_refused_when_a_split_is_asked(tmp_path):
    path = toy_scores().save(tmp_path / "s.pt")  # records no split, like a version-1 file
    Scores.load(path, "abc123")
    with pytest.raises(ScoresMismatch, match="does not record which split"):
        Scores.load(path, "abc123", _split([0]))
