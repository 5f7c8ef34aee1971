"""The CUDA paths against the CPU ones: same function at the same weights, whole runs on a GPU.

Skipped where no CUDA device is visible (CI, the CPU development machines); run them on a GPU
machine with ``pytest tests/cuda``. CUDA's scatter-adds sum in no fixed order, so float32 results
agree with the CPU's to rounding, not bit for bit.
"""

import json

import pytest
import torch

from spexphormer.cli import main
from spexphormer.graph.features import input_features
from spexphormer.nn import AttentionScoreEstimator, Spexphormer
from spexphormer.nn.csr_attention import CSRGraph
from spexphormer.nn.local_attention import LocalAttentionNet
from spexphormer.pipeline.stage1 import augment_graph, estimate, estimator_args
from spexphormer.presets import preset
from spexphormer.train import task_loss
from spexphormer.data import graph_info
from tests.helpers import FAST, make_toy_graph, write_graph_file

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
GPU = torch.device("cuda")


def _tables(sizes, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = [torch.randint(0, n_in, (n_out, k), generator=g) for n_in, n_out in zip(sizes, sizes[1:])]
    etype = [torch.randint(0, 3, (n_out, k), generator=g) for n_out in sizes[1:]]
    return index, etype


def _forward_backward(model, x, index, etype):
    model.zero_grad()
    out = model(x, index, etype)
    out.pow(2).sum().backward()
    return out.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters()}


@pytest.mark.parametrize("make", [
    lambda: Spexphormer(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.0),
    lambda: LocalAttentionNet(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.0, local="sage"),
    lambda: LocalAttentionNet(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.0, local="sum"),
    lambda: LocalAttentionNet(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.0, local="gated"),
])
@pytest.mark.parametrize("recompute", [False, True])
def test_wide_models_compute_the_same_function_on_gpu(make, recompute):
    sizes = [60, 40, 20, 10]
    index, etype = _tables(sizes, k=5)
    x = torch.randn(sizes[0], 6, dtype=torch.float64)
    torch.manual_seed(0)
    model = make().double()
    model.recompute = recompute
    model.train()
    cpu = _forward_backward(model, x, index, etype)
    model.to(GPU)
    gpu = _forward_backward(model, x.to(GPU), [i.to(GPU) for i in index], [e.to(GPU) for e in etype])
    torch.testing.assert_close(gpu[0], cpu[0])
    for name in cpu[1]:
        torch.testing.assert_close(gpu[1][name], cpu[1][name], msg=name)


def test_estimator_on_gpu_matches_the_fused_cpu_kernels():
    data = make_toy_graph()
    cfg = preset("minesweeper").override(["graph.exp_deg=2"])
    graph = augment_graph(data, cfg)
    torch.manual_seed(0)
    model = AttentionScoreEstimator(**estimator_args(data, cfg)).double()
    x, mask = data.x.double(), data.train_mask
    out = {}
    for device in ("cpu", "cuda"):  # the CPU runs the fused CSR kernels, CUDA the edge-list path
        model.to(device).zero_grad()
        fused = {"csr": CSRGraph.from_graph(graph)} if device == "cpu" else {}
        logits, scores = model(x.to(device), graph.edge_index.to(device), graph.edge_type.to(device), 0.6,
                               return_scores=True, **fused)
        task_loss(logits[mask.to(device)], data.y[mask].to(device), graph_info(data).task).backward()
        out[device] = (logits.detach().cpu(), scores.cpu(),
                       {n: p.grad.detach().cpu() for n, p in model.named_parameters()})
    torch.testing.assert_close(out["cuda"][0], out["cpu"][0])
    torch.testing.assert_close(out["cuda"][1], out["cpu"][1])
    for name in out["cpu"][2]:
        torch.testing.assert_close(out["cuda"][2][name], out["cpu"][2][name], msg=name)


def test_stage1_training_on_gpu_follows_the_cpu_trajectory():
    data = make_toy_graph()
    cfg = preset("cora").override(["stage1.epochs=4", "stage1.temp_wait=2", "graph.exp_deg=2"])
    cpu = estimate(data, cfg, progress=False, device="cpu")
    gpu = estimate(data, cfg, progress=False, device="cuda")
    for a, b in zip(cpu.fit.history, gpu.fit.history):
        # On the CPU, fused against edge-list kernels (the same kind of rounding difference), over
        # 50 runs (seeds x threads x capabilities): loss <= 1e-6, val <= 0.019 (test_stage1_fused.py).
        assert abs(a["loss"] - b["loss"]) < 1e-3 and abs(a["val"] - b["val"]) < 0.05


def test_whole_graph_inputs_on_gpu():
    data = make_toy_graph()
    cpu = input_features(data.x, data.edge_index, degree=True, hops=2)
    gpu = input_features(data.x.to(GPU), data.edge_index.to(GPU), degree=True, hops=2)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model", ["spexphormer", "local-attention"])
def test_run_and_predict_on_gpu(model, tmp_path):
    path = write_graph_file(tmp_path / "toy.pt")
    out = tmp_path / "out"
    assert main(["run", "--data", str(path), "--model", model, "--seeds", "1", "--out", str(out),
                 "--device", "cuda", *FAST, "--set", "stage2.epochs=5", "--set", "stage2.recompute=true"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["machine"]["device"].startswith("cuda") and results["machine"]["gpu"]
    assert results["stages"]["stage1"]["memory_kind"] == "cuda_max_allocated"
    # Not measured on a GPU (no device was lent). The same runs on the CPU (stage1/graph/run seed
    # 0..9 native, 0..4 with ATEN_CPU_CAPABILITY=default + MKL_ENABLE_INSTRUCTIONS=AVX2; 15 runs):
    # spexphormer min 0.706, mean 0.809, max 0.869; local-attention min 0.762, mean 0.808, max 0.856;
    # with lr 1e-12 (learned nothing): 0.41 and 0.39 (seed 0), and up to 0.60 over 4 seeds for the
    # same toy graph in test_local_model_cli.py. Chance is 0.5; the bound sits between: 0.65.
    assert results["test"]["mean"] > 0.65
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--device", "cuda",
                 "--out", str(pred)]) == 0
    assert len(pred.read_text().splitlines()) == 301


def test_exphormer_on_gpu(tmp_path):
    path = write_graph_file(tmp_path / "toy.pt")
    out = tmp_path / "out"
    assert main(["train", "--data", str(path), "--model", "exphormer", "--seeds", "1", "--out", str(out),
                 "--device", "cuda", *FAST, "--set", "stage2.epochs=5"]) == 0
    # On the CPU, as above (15 runs): min 0.797, mean 0.835, max 0.862; learned nothing: 0.37.
    assert json.loads((out / "results.json").read_text())["test"]["mean"] > 0.65
