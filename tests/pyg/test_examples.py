"""The examples in examples/ run and learn: above chance on a real dataset and on a user's graph."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_pyg_sage_on_attention_guided_samples_of_minesweeper(shared_datasets):
    example = runpy.run_path(str(EXAMPLES / "pyg_sage_on_samples.py"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = example["main"](["--dataset", "minesweeper", "--data-root", str(shared_datasets),
                                  "--stage1-epochs", "10", "--epochs", "10",
                                  "--set", "stage2.keep_graph_edges=true"])
    finally:
        torch.set_num_threads(threads)
    # chance: 0.5. Measured only once after the per-type terms changed (seed 0, 1 thread): 0.825;
    # not measured over seeds, threads or capabilities (the machine was too busy).
    assert result["metric"] == "rocauc" and result["test"] > 0.7, result


@pytest.mark.slow
def test_train_on_my_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLES / "train_on_my_data.py"), run_name="__main__")
    assert "spexphormer (1 seeds)" in capsys.readouterr().out
    results = json.loads((tmp_path / "runs" / "my-graph" / "results.json").read_text())
    # 4 balanced classes: chance 0.25. Measured with stage1/graph/run seed 0 and 1 (1 thread): 0.630,
    # 0.705; not measured over more seeds, threads or capabilities (the machine was too busy).
    assert results["metric"] == "accuracy" and results["test"]["mean"] > 0.4
    assert (tmp_path / "runs" / "my-graph" / "seed0" / "curves.png").is_file()
