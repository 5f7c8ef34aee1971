"""Issue 23: every bad input ends in one line ``error: ...`` and exit status 2 before any work is
done: numeric config keys, YAML and JSON configs, corrupt files, paths, sizes that would ask
for terabytes."""

import os
import time

import numpy as np
import pytest
import torch

from spexphormer.cli import main
from spexphormer.config import MAX_SEEDS, check_graph_sizes
from spexphormer.errors import LINE_LIMIT, ConfigError, shown
from spexphormer.presets import preset
from spexphormer.utils.checksum import content_digest
from tests.helpers import FAST


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert len(err[0]) <= LINE_LIMIT + len("error: ")
    return err[0]


# -- numeric config keys --------------------------------------------------------------------------

@pytest.mark.parametrize("assignment, message", [
    ("stage2.lr=inf", "stage2.lr must be a finite number, got inf"),
    ("stage2.weight_decay=nan", "stage2.weight_decay must be a finite number, got nan"),
    ("stage2.weight_decay=-1", "stage2.weight_decay must be non-negative, got -1.0"),
    ("stage1.weight_decay=200", "stage1.lr x stage1.weight_decay must be at most 1"),
    ("stage1.lr=1e308", "stage1.lr must be in (0, 10], got 1e+308"),
    ("stage1.clip=-inf", "stage1.clip must be a finite number, got -inf"),
    ("run.checkpoint_seconds=nan", "run.checkpoint_seconds must be a finite number, got nan"),
    (f"run.seed={10**20}", f"run.seed={10**20} is out of range"),
    (f"stage2.ks={10**12},5,5,5", f"stage2.ks={10**12} is out of range"),
    (f"run.seeds={MAX_SEEDS + 1}", f"run.seeds must be at most {MAX_SEEDS:,}"),
    (f"stage2.hidden={2**20}", "stage2.hidden=1,048,576 with 2 layers needs at least"),
])
def test_numeric_keys_are_checked_before_any_work(graph_file, tmp_path, capsys, assignment, message):
    assert main(["run", "--data", str(graph_file), "--out", str(tmp_path / "o"), *FAST, "--set", assignment]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "o").exists()  # refused before the run folder was made


def test_seeds_flag_of_a_trillion_is_one_line(graph_file, tmp_path, capsys):
    assert main(["run", "--data", str(graph_file), "--out", str(tmp_path / "o"), "--seeds", str(10**12)]) == 2
    assert "run.seeds=1000000000000 is out of range" in _error_line(capsys)


def test_graph_sized_settings_beyond_memory_are_refused():
    cfg = preset(None)
    with pytest.raises(ConfigError, match="graph.exp_deg=100,000,000 gives this graph"):
        check_graph_sizes(cfg.override(["graph.exp_deg=100000000"]), 300, 2400)
    with pytest.raises(ConfigError, match="stage2.ks=100000000,5,5,5 gives 300 nodes neighbour tables"):
        check_graph_sizes(cfg.override(["stage2.ks=100000000,5,5,5"]), 300, 2400)
    check_graph_sizes(cfg, 300, 2400)  # the preset fits


def test_a_label_of_a_billion_is_one_line(tmp_path, capsys):
    n = 30
    y = np.arange(n) % 2
    y[0] = 10**9
    np.savez(tmp_path / "g.npz", node_features=np.ones((n, 3)), node_labels=y,
             edges=np.array([[i, (i + 1) % n] for i in range(n)]))
    assert main(["info", "--data", str(tmp_path / "g.npz")]) == 2
    assert "labels go up to 1,000,000,000 but the graph has 30 nodes" in _error_line(capsys)


# -- configuration files --------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, message", [
    ("dup.yaml", "stage1:\n  lr: 0.1\n  lr: 0.2\n", "invalid YAML at line 3: 'lr' is given twice"),
    ("section.yaml", "stage1:\n  lr: 0.1\nstage2:\n  lr: 0.1\nstage1:\n  epochs: 3\n",
     "invalid YAML at line 5: 'stage1' is given twice"),
    ("dup.json", '{"stage1": {"lr": 0.1}, "stage1": {"epochs": 3}}', "'stage1' is given twice"),
    ("alias.yaml", "stage1: &s\n  lr: 0.1\nstage2: *s\n", "anchors and aliases (&name, *name) are not allowed"),
])
def test_config_files_with_duplicate_keys_or_aliases_are_refused(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    assert main(["config", "--config", str(tmp_path / name)]) == 2
    assert message in _error_line(capsys)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    """The probe's 342-byte bomb ran 85 s into MemoryError; a 7-level one made a 39 MB error line."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    assert main(["config", "--config", str(tmp_path / "bomb.yaml")]) == 2
    assert time.perf_counter() - start < 5  # generous: the refusal takes milliseconds
    assert "anchors and aliases" in _error_line(capsys)


def test_a_huge_value_is_quoted_short(tmp_path, capsys):
    (tmp_path / "long.yaml").write_text("stage1:\n  lr: '" + "9" * 10**6 + "x'\n")
    assert main(["config", "--config", str(tmp_path / "long.yaml")]) == 2
    line = _error_line(capsys)
    assert "stage1.lr: cannot read '999" in line and len(line) < 200


@pytest.mark.parametrize("special", ["/dev/zero", "folder"])
def test_a_config_that_is_not_a_regular_file_is_refused(tmp_path, capsys, special):
    path = tmp_path if special == "folder" else special
    assert main(["config", "--config", str(path)]) == 2
    assert "not a regular file" in _error_line(capsys)


def test_shown_bounds_any_value():
    assert len(shown("x" * 10**7)) <= 60 and len(shown([[["x" * 10**5] * 100] * 100])) <= 60
    assert "\n" not in shown("a\nb" * 1000)


# -- corrupt files ----------------------------------------------------------------------------------

def _npy_folder(path, n=10):
    path.mkdir()
    np.save(path / "x.npy", np.random.default_rng(0).random((n, 3)).astype(np.float32))
    np.save(path / "y.npy", np.arange(n) % 3)
    np.save(path / "edge_index.npy", np.array([[i, (i + 1) % n] for i in range(n)]).T)
    return path


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), ",  # TokenError in numpy's parser
    b"{'descr': '<f4', 'fortran_order': False}                     ",  # KeyError
    b"{'descr': '<f4', 'fortran_order': False, 'shape': ()[0], }   ",  # not a literal
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (-10, 3), }",  # a negative dimension
])
def test_corrupt_npy_headers_are_one_line(tmp_path, capsys, header):
    folder = _npy_folder(tmp_path / "g")
    raw = (folder / "x.npy").read_bytes()
    start, end = raw.index(b"{"), raw.index(b"\n")  # the header's dict, padded with spaces to the newline
    (folder / "x.npy").write_bytes(raw[:start] + header.strip().ljust(end - start) + raw[end:])
    assert main(["info", "--data", str(folder)]) == 2
    assert f"cannot read {folder / 'x.npy'}: not a valid .npy file" in _error_line(capsys)


def test_a_missing_mask_file_is_called_a_file(tmp_path, capsys):
    folder = _npy_folder(tmp_path / "g")
    np.save(folder / "train_mask.npy", np.ones(10, bool))
    assert main(["info", "--data", str(folder)]) == 2
    assert "missing file 'val_mask.npy' (give all three mask files or none)" in _error_line(capsys)


def test_a_pt_link_to_a_text_file_is_one_line(tmp_path, capsys):
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(tmp_path / "passwd", tmp_path / "graph.pt")
    assert main(["info", "--data", str(tmp_path / "graph.pt")]) == 2
    assert "not a readable torch file" in _error_line(capsys)


def test_a_plain_pickle_is_one_line_that_says_so(tmp_path, capsys):
    import pickle
    (tmp_path / "plain.pt").write_bytes(pickle.dumps({"x": 1}, protocol=4))
    assert main(["info", "--data", str(tmp_path / "plain.pt")]) == 2
    line = _error_line(capsys)  # torch's protocol warning no longer comes first
    assert "holds a plain pickle" in line and "corrupt" not in line


def test_a_folder_given_as_checkpoint_is_called_a_folder(tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "p.csv")]) == 2
    assert f"checkpoint {tmp_path} is a folder, not a file" in _error_line(capsys)


# -- paths ------------------------------------------------------------------------------------------

def test_a_non_utf8_out_path_is_refused_before_training(graph_file, tmp_path, capsys):
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run\xff")
    assert main(["run", "--data", str(graph_file), "--out", out, *FAST]) == 2
    line = _error_line(capsys)
    assert line.startswith("error: --out: the path") and "is not valid UTF-8" in line
    assert not os.path.exists(out)


def test_the_checksum_takes_undecodable_path_text():
    text = os.fsdecode(b"run\xff")
    assert content_digest({"path": text}) != content_digest({"path": "run"})


def test_numpy_and_torch_tensors_in_messages_stay_short():
    assert len(shown(torch.zeros(10**6))) <= 60 and len(shown(np.zeros(10**6))) <= 60


def test_a_declared_class_count_of_a_billion_is_one_line(tmp_path, capsys):
    from tests.helpers import make_toy_graph
    data = make_toy_graph(num_nodes=3, num_edges=6)
    torch.save({"x": data.x, "y": data.y, "edge_index": data.edge_index, "num_classes": 10**9}, tmp_path / "g.pt")
    assert main(["info", "--data", str(tmp_path / "g.pt")]) == 2
    assert "1,000,000,000 classes (for 3 nodes) need more memory for the model's outputs" in _error_line(capsys)
