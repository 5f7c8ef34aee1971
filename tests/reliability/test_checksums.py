"""Item 4 of issue 15: scores files and checkpoints carry a SHA-256 of their contents; contents are checked."""

import struct
import zipfile

import pytest
import torch

from spexphormer.cli import main
from spexphormer.presets import preset
from spexphormer.errors import CheckpointError, ScoresMismatch
from spexphormer.scores import Scores
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from spexphormer.utils.checksum import save_sealed
from spexphormer.utils.io import save_torch
from tests.helpers import toy_scores


def _flip_a_byte_inside(path) -> None:
    """Flip one bit in the middle of the stored bytes of the file's largest tensor (as bit rot would)."""
    with zipfile.ZipFile(path) as z:
        names = {i.filename: i for i in z.infolist()}
    info = max((i for i in names.values() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def _checkpoint(path):
    model = torch.nn.Linear(64, 8)
    return save_checkpoint(path, "spexphormer", {"in_dim": 64}, model.state_dict(), "fp", preset(None).to_dict(),
                           {"seed": 0})


def test_a_flipped_bit_in_checkpoint_weights_is_caught(tmp_path):
    path = _checkpoint(tmp_path / "model.pt")
    load_checkpoint(path)
    _flip_a_byte_inside(path)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt: .*SHA-256"):
        load_checkpoint(path)


def test_a_flipped_bit_in_scores_is_caught(tmp_path):
    path = toy_scores().save(tmp_path / "s.pt")
    _flip_a_byte_inside(path)
    with pytest.raises(ScoresMismatch, match=f"scores file {path} is corrupt: .*SHA-256"):
        Scores.load(path)


def test_cli_reports_a_corrupt_checkpoint_in_one_line(tmp_path, capsys):
    path = _checkpoint(tmp_path / "model.pt")
    _flip_a_byte_inside(path)
    assert main(["predict", "--checkpoint", str(path), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(path) in err[0] and "SHA-256" in err[0]


def _payload(s: Scores) -> dict:
    g = s.graph
    return {"format": "spexphormer-scores", "version": 3, "fingerprint": "abc123", "num_nodes": g.num_nodes,
            "edge_index": g.edge_index.clone(), "edge_type": g.edge_type.to(torch.int8), "ptr": g.ptr,
            "scores": s.scores.clone()}


@pytest.mark.parametrize("damage, message", [
    (lambda p: p["edge_index"].__setitem__((0, 3), 10_000), "edge indices outside"),
    (lambda p: p["scores"].__setitem__((1, 5), -0.25), "finite and non-negative"),
    (lambda p: p["scores"].__setitem__((1, 5), float("nan")), "finite and non-negative"),
    (lambda p: p["scores"].__setitem__((0, 0), p["scores"][0, 0] + 0.5), "sum to"),
    (lambda p: p.__setitem__("ptr", p["ptr"][:-1]), "inconsistent"),
    (lambda p: p["edge_type"].__setitem__(0, 7), "edge types outside"),
    (lambda p: p["edge_index"].__setitem__((1, 0), 1), "not grouped by destination"),
])
def test_consistently_checksummed_but_invalid_contents_are_refused(tmp_path, damage, message):
    payload = _payload(toy_scores())
    damage(payload)
    path = save_sealed(payload, tmp_path / "s.pt")  # a valid checksum over invalid contents
    with pytest.raises(ScoresMismatch, match=message):
        Scores.load(path)


def test_files_from_before_checksums_still_load_naming_their_version(tmp_path):
    s = toy_scores()
    for version in (1, 2):
        path = save_torch({**_payload(s), "version": version}, tmp_path / f"old{version}.pt")
        with pytest.warns(UserWarning, match=f"format version {version} .*not verified"):
            assert torch.equal(Scores.load(path).scores, s.scores)
    model = torch.nn.Linear(4, 2)
    old = save_torch({"format": "spexphormer-checkpoint", "version": 2, "kind": "exphormer", "model_args": {},
                      "state_dict": model.state_dict(), "fingerprint": "fp", "config": {}, "meta": {}},
                     tmp_path / "old-model.pt")
    with pytest.warns(UserWarning, match="format version 2"):
        load_checkpoint(old)


def test_a_current_file_without_its_checksum_is_refused(tmp_path):
    path = save_torch(_payload(toy_scores()), tmp_path / "s.pt")
    with pytest.raises(ScoresMismatch, match="lacks its checksum"):
        Scores.load(path)


def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path):
    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "m.pt", "exphormer", {}, model.state_dict(), "fp", {}, {})
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(path)
