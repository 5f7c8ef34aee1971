"""The scripts that run the authors' code (benchmarks/reference.py, reference_diff.py): bad input ends
with one ``error:`` line and exit 2, and a GraphGym run folder is read as their loop reads it (the
first epoch with the highest validation metric). The authors' code itself is not needed here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import reference  # noqa: E402


def _run(script, *args):
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True)


@pytest.mark.parametrize("script,args", [
    ("reference.py", ["--ref-dir", "/nonexistent", "--python", sys.executable, "--dataset", "minesweeper"]),
    ("reference.py", ["--ref-dir", "/nonexistent", "--python", sys.executable, "--dataset", "cora"]),
    ("reference_diff.py", ["--ref-dir", "/nonexistent", "--python", sys.executable]),
    ("reference_diff.py", ["--ref-dir", "/nonexistent", "--python", sys.executable, "--dataset", "cora"]),
])
def test_bad_input_is_one_error_line(script, args):
    res = _run(script, *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_runs_inside_the_repository_are_refused(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "main.py").write_text("")
    res = _run("reference.py", "--ref-dir", str(ref), "--python", sys.executable, "--dataset", "minesweeper",
               "--work", str(BENCH / "results" / "runs"), "--data-root", str(tmp_path))
    assert res.returncode == 2 and "inside the repository" in res.stderr


def test_best_epoch_is_the_first_highest_validation(tmp_path):
    run = tmp_path / "results" / "minesweeper_ASE" / "3"
    vals, tests = [0.70, 0.81, 0.79, 0.81], [0.71, 0.82, 0.90, 0.95]
    for split, metric in (("val", vals), ("test", tests)):
        (run / split).mkdir(parents=True)
        (run / split / "stats.json").write_text(
            "".join(json.dumps({"epoch": e, "auc": m, "loss": 0.5}) + "\n" for e, m in enumerate(metric)))
    (run / "logging.log").write_text(
        "> Epoch 3: took 1.0s (avg 1.0s) | Best so far: epoch 1\ttrain_loss: 0.4000 train_auc: 0.9000\t"
        "val_loss: 0.5000 val_auc: 0.8100\ttest_loss: 0.5000 test_auc: 0.8200\n")
    out = reference.parse_stage(tmp_path, "minesweeper_ASE", 3, "auc")
    assert out["best_epoch"] == 1 and out["epochs"] == 4
    assert out["val"] == pytest.approx(81.0) and out["test"] == pytest.approx(82.0)
    assert out["log_best"] == {"epoch": 1, "val": 81.0, "test": 82.0} and "log_mismatch" not in out


def test_difference_of_the_two_sides_against_scipy():
    from scipy import stats

    ours, theirs = [85.2, 75.9, 73.3, 72.0, 85.9, 76.0], [88.3, 80.9, 87.4, 52.6]
    d = reference.difference(ours, theirs)
    t = stats.ttest_ind(ours, theirs, equal_var=False)
    ci = t.confidence_interval(0.95)  # scipy's own Welch interval, computed independently of ours
    assert d["delta"] == pytest.approx(sum(ours) / 6 - sum(theirs) / 4)
    assert d["ci95"] == pytest.approx([ci.low, ci.high]) and d["welch_p"] == pytest.approx(t.pvalue)
    assert d["mann_whitney_p"] == pytest.approx(stats.mannwhitneyu(ours, theirs).pvalue)
    assert d["n"] == [6, 4] and reference.difference([1.0], theirs) is None


def test_a_run_range_outside_the_runs_is_refused(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "main.py").write_text("")
    res = _run("reference.py", "--ref-dir", str(ref), "--python", sys.executable, "--dataset", "minesweeper",
               "--runs", "3", "--from-run", "3", "--work", str(tmp_path / "w"), "--data-root", str(tmp_path))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: --from-run must be at least 0 and below --runs"]


def test_ours_on_the_reference_data_takes_their_features_labels_and_split(tmp_path):
    import numpy as np
    import torch

    from tests.helpers import make_toy_graph

    data = make_toy_graph(num_nodes=50, num_edges=200, task="multiclass")
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(1))  # their rows: other node ids
    ei = torch.cat([data.edge_index, data.edge_index[:, :5], torch.tensor([[3], [3]])], dim=1)  # repeats, a loop
    masks = {k: torch.rand(50, generator=torch.Generator().manual_seed(i)) < 0.3
             for i, k in enumerate(("train", "val", "test"))}
    for key, value in {"x": data.x[perm], "y": data.y[perm], "edge_index": ei,
                       **{f"{k}_mask": m for k, m in masks.items()}}.items():
        np.save(tmp_path / f"{key}.npy", value.numpy())
    ours, facts = reference.on_reference_data(data, tmp_path, 4)
    assert torch.equal(ours.x, data.x[perm]) and torch.equal(ours.y, data.y[perm])
    assert all(torch.equal(getattr(ours, f"{k}_mask"), m) for k, m in masks.items())
    assert torch.equal(ours.edge_index, data.edge_index) and torch.equal(data.x, make_toy_graph(
        num_nodes=50, num_edges=200, task="multiclass").x)  # the input is not changed
    assert ours.info.source is None and "run 4" in ours.info.split
    assert facts["same_node_order"] is False and facts["their_self_loops"] == 1
    assert facts["their_edge_rows"] == data.edge_index.size(1) + 6
    assert facts["pairs_only_ours"] == 0 and facts["pairs_only_theirs_not_self_loops"] == 0


def test_pairing_needs_a_reference_run_per_seed(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "main.py").write_text("")
    res = _run("reference.py", "--ref-dir", str(ref), "--python", sys.executable, "--dataset", "actor",
               "--runs", "3", "--ours", "--paired", "--seeds", "5", "--work", str(tmp_path / "w"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "--paired" in res.stderr


def test_paired_difference_against_scipy():
    from scipy import stats

    ours, theirs = {0: 37.6, 1: 37.1, 2: 38.2, 3: 40.3}, {0: 34.7, 1: 41.9, 2: 37.5, 3: 39.3, 4: 37.3}
    d = reference.paired_difference(ours, theirs)  # run 4 has no pair
    a, b = [ours[r] for r in range(4)], [theirs[r] for r in range(4)]
    t = stats.ttest_rel(a, b)
    ci = t.confidence_interval(0.95)
    assert d["runs"] == [0, 1, 2, 3] and d["delta"] == pytest.approx(sum(a) / 4 - sum(b) / 4)
    assert d["ci95"] == pytest.approx([ci.low, ci.high]) and d["paired_t_p"] == pytest.approx(t.pvalue)
    assert d["wilcoxon_p"] == pytest.approx(stats.wilcoxon([x - y for x, y in zip(a, b)]).pvalue)
    assert reference.paired_difference({0: 1.0}, {0: 2.0}) is None


def test_pairing_with_a_reference_run_that_has_no_data_is_one_error_line(tmp_path):
    root = reference.DEFAULT_DATA_ROOT
    if not (root / "Heterophilous/minesweeper/raw/minesweeper.npz").is_file():
        pytest.skip("the Minesweeper dataset is not in ../shared/datasets")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "main.py").write_text("")
    res = _run("reference.py", "--ref-dir", str(ref), "--python", sys.executable, "--dataset", "minesweeper",
               "--runs", "1", "--collect", "--ours", "--paired", "--seeds", "1", "--work", str(tmp_path / "w"),
               "--data-root", str(root), "--out", str(tmp_path / "r.json"), "--compare-out", str(tmp_path / "c.json"),
               "--ours-runs", str(tmp_path / "ours"))
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert errors == [res.stderr.strip().splitlines()[-1]] and "reference run 0" in errors[0]
