"""Item 1 of issue 15: nothing from a data file is executed unless the user says so for that file."""

from pathlib import Path

import pytest
import torch

from spexphormer.cli import main
from spexphormer.presets import preset
from spexphormer.data import load_graph
from spexphormer.errors import DataError
from spexphormer.pipeline.predict import predict
from spexphormer.train.checkpoint import save_checkpoint
from tests.helpers import make_toy_graph


class Payload:
    """Unpickling this object creates ``marker``: the stand-in for code run by a crafted file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted_graph_file(tmp_path: Path) -> tuple[Path, Path]:
    data = make_toy_graph(num_nodes=40, num_edges=200)
    marker = tmp_path / "code-ran"
    path = tmp_path / "crafted.pt"
    torch.save({"x": data.x, "y": data.y, "edge_index": data.edge_index, "note": Payload(marker)}, path)
    return path, marker


def test_data_file_with_foreign_types_is_refused_without_running_it(tmp_path):
    path, marker = _crafted_graph_file(tmp_path)
    with pytest.raises(DataError, match="--trust-pickle"):
        load_graph(path=path)
    assert not marker.exists()


def test_trust_pickle_loads_that_file(tmp_path):
    path, marker = _crafted_graph_file(tmp_path)
    data = load_graph(path=path, trust_pickle=True)
    assert data.num_nodes == 40 and marker.exists()  # the user consented: the file's code ran


def test_cli_refuses_in_one_line_and_names_the_flag(tmp_path, capsys):
    path, marker = _crafted_graph_file(tmp_path)
    assert main(["info", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--trust-pickle" in err[0]
    assert not marker.exists()
    assert main(["info", "--data", str(path), "--trust-pickle"]) == 0


def test_predict_never_unpickles_because_a_checkpoint_says_so(tmp_path):
    path, marker = _crafted_graph_file(tmp_path)
    source = {"dataset": None, "path": str(path), "split_index": 0, "symmetrize": True}
    ckpt = save_checkpoint(tmp_path / "model.pt", "spexphormer", {}, {}, "0" * 16, preset(None).to_dict(),
                           {"source": source})
    with pytest.raises(DataError, match="--trust-pickle"):
        predict(ckpt)
    assert not marker.exists()


def test_trust_pickle_never_reaches_a_path_recorded_in_a_checkpoint(tmp_path, capsys):
    """Issue 23: a checkpoint resealed with ``meta.source.path=evil.pt`` (its checksum is easy to
    recompute), then ``predict --checkpoint crafted.pt --trust-pickle``: evil.pt must not run."""
    path, marker = _crafted_graph_file(tmp_path)
    source = {"dataset": None, "path": str(path), "split_index": 0, "symmetrize": True}
    ckpt = save_checkpoint(tmp_path / "resealed-model.pt", "spexphormer", {}, {}, "0" * 16, preset(None).to_dict(),
                           {"source": source})
    assert main(["predict", "--checkpoint", str(ckpt), "--trust-pickle", "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --trust-pickle applies to the file given with --data only (a path recorded in a "
                   "checkpoint is never unpickled)"]
    with pytest.raises(DataError, match="a path recorded in a checkpoint is never unpickled"):
        predict(ckpt)  # the library has no flag that reaches it at all
    assert not marker.exists() and not (tmp_path / "p.csv").exists()
