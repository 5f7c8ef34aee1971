"""End-to-end behaviour of the stages on a small graph (seconds, CPU)."""

import json

import pytest
import torch

from spexphormer.presets import preset
from spexphormer.errors import ConfigError, ScoresMismatch
from spexphormer.pipeline import estimate, run, train_exphormer
from spexphormer.pipeline.predict import predict, write_predictions
from spexphormer.scores import Scores
from spexphormer.train import temperature
from tests.helpers import make_toy_graph

FAST = ["stage1.epochs=8", "stage2.epochs=4", "stage2.batch_size=64", "run.seeds=2", "stage2.ks=4,3,3,3",
        "graph.exp_deg=2"]


def test_scores_sum_to_one_per_node_in_every_layer(toy_graph):
    cfg = preset("minesweeper").override(FAST)
    res = estimate(toy_graph, cfg, progress=False)
    scores, g = res.scores.scores, res.scores.graph
    assert scores.shape == (cfg.stage1.num_layers, g.num_edges)
    for layer in scores:
        sums = torch.zeros(g.num_nodes).index_add_(0, g.dst, layer)
        assert torch.allclose(sums, torch.ones(g.num_nodes), atol=1e-5)
    s1 = cfg.stage1
    # the reference's export rule: the best epoch's temperature once annealing has started, else the
    # last temperature the schedule reached
    exported_at = res.fit.best_epoch if res.fit.best_epoch >= s1.temp_wait else s1.epochs - 1
    assert res.scores.temperature == temperature(exported_at, s1.temp_ratio, s1.temp_wait, s1.temp_min)
    assert 0.0 <= res.scores.metrics["test"] <= 1.0


@pytest.mark.slow  # end to end: several stages and runs
def test_same_seed_same_scores_and_results(toy_graph, tmp_path):
    cfg = preset("minesweeper").override(FAST + ["stage1.temp_wait=2", "stage1.temp_ratio=0.5"])
    a = estimate(toy_graph, cfg, progress=False).scores
    b = estimate(toy_graph, cfg, progress=False).scores
    assert torch.equal(a.scores, b.scores)
    c = estimate(toy_graph, cfg.override(["stage1.seed=1"]), progress=False).scores
    assert not torch.equal(a.scores, c.scores)
    r1 = run(toy_graph, cfg, tmp_path / "a", progress=False)
    r2 = run(toy_graph, cfg, tmp_path / "b", progress=False)
    assert r1["test"]["per_seed"] == r2["test"]["per_seed"]


@pytest.mark.slow  # end to end: several stages and runs
def test_run_writes_results_reuses_scores_and_predicts(tmp_path):
    data = make_toy_graph(task="multiclass")
    cfg = preset("minesweeper").override(FAST)
    out = tmp_path / "run"
    res = run(data, cfg, out, progress=False)
    saved = json.loads((out / "results.json").read_text())
    for key in ("dataset", "split", "metric", "test", "val", "stages", "seconds_per_epoch", "edge_ratio"):
        assert key in saved
    assert set(saved["test"]) >= {"mean", "std", "per_seed"} and len(saved["test"]["per_seed"]) == 2
    for stage in ("stage1", "stage2"):
        assert saved["stages"][stage]["seconds"] > 0 and saved["stages"][stage]["peak_memory_bytes"] > 0
    assert 0 < saved["edge_ratio"] < 1
    assert len(list(out.glob("seed*/log.jsonl"))) == 2
    # a second run reuses the scores file of the same graph and stage-1 config
    again = run(data, cfg, out, progress=False)
    assert again["stages"]["stage1"]["reused"]
    # predictions for chosen nodes
    pred = predict(out / "seed0" / "model.pt", data=data, nodes=[0, 5, 7])
    assert pred["logits"].shape == (3, 3)
    path = write_predictions(pred, tmp_path / "pred.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("node,prediction,score_0") and len(lines) == 4
    assert res["seeds"] == [0, 1]


def test_scores_of_another_graph_are_refused(tmp_path):
    cfg = preset("minesweeper").override(FAST)
    estimate(make_toy_graph(seed=0), cfg, out=tmp_path / "s.pt", progress=False)
    with pytest.raises(ScoresMismatch, match="another graph"):
        run(make_toy_graph(seed=1), cfg, tmp_path / "o", scores_path=tmp_path / "s.pt", progress=False)
    assert Scores.load(tmp_path / "s.pt").num_layers == 4


@pytest.mark.slow  # end to end: several stages and runs
def test_exphormer_trains_full_batch(toy_graph):
    cfg = preset("minesweeper").override(FAST)
    res = train_exphormer(toy_graph, cfg, progress=False)
    assert len(res.fit.history) == cfg.stage2.epochs and 0 <= res.fit.test <= 1


def test_keep_graph_edges_puts_every_graph_edge_in_the_sample(toy_graph):
    from spexphormer.graph import GRAPH_EDGE
    from spexphormer.pipeline.stage2 import layer_sampler

    # k = 3 stays below every in-degree (4 expander edges + a self-loop), so no edge repeats
    cfg = preset("minesweeper").override(FAST + ["stage2.ks=3,3,3,3", "stage2.keep_graph_edges=true"])
    scores = estimate(toy_graph, cfg, progress=False).scores
    layers = layer_sampler(scores, cfg, seed=0).sample(0)
    g = scores.graph
    graph_in = torch.bincount(g.dst[g.edge_type == GRAPH_EDGE], minlength=g.num_nodes)
    for neighbours, types in zip(layers.neighbours, layers.edge_types):
        kept = (types == GRAPH_EDGE).sum(1)
        assert torch.equal(kept, graph_in.clamp(max=3))  # all of them, or k of them
        for v in torch.nonzero(graph_in <= 3).view(-1)[:20].tolist():
            sources = set(g.src[g.ptr[v]:g.ptr[v + 1]][g.edge_type[g.ptr[v]:g.ptr[v + 1]] == GRAPH_EDGE].tolist())
            assert sources == set(neighbours[v][types[v] == GRAPH_EDGE].tolist())
    with pytest.raises(ConfigError, match="keep_graph_edges"):
        cfg.override(["stage2.sampler=uniform"])


def test_export_temperature_modes():
    from spexphormer.pipeline.stage1 import export_temperature
    cfg = preset("minesweeper").override(["stage1.temp_wait=6", "stage1.temp_ratio=0.5", "stage1.temp_min=0.05"])
    best, ref = (cfg.override([f"stage1.export_temperature={m}"]).stage1 for m in ("best", "reference"))
    # best epoch before annealing starts: T = 1 at that epoch; the reference keeps the last T reached
    assert export_temperature(3, 7, best) == 1.0
    assert export_temperature(3, 7, ref) == 0.5 ** (7 - 6)
    # best epoch during annealing: both export at the best epoch's temperature
    assert export_temperature(8, 11, best) == export_temperature(8, 11, ref) == 0.5 ** 2
    assert export_temperature(3, 40, ref) == 0.05  # never below temp_min


def test_every_change_of_content_makes_new_scores(tmp_path):
    """The scores a run reuses are keyed on what they were computed from: features, labels and
    edges, not only their shapes. A run into the same folder after a label flip or a rescaling of
    the features trains a new estimator; the unchanged graph reuses its own."""
    data = make_toy_graph()
    cfg = preset("minesweeper").override(["stage1.epochs=2", "stage2.epochs=1", "stage2.batch_size=512",
                                          "run.seeds=1", "stage2.ks=2,2,2,2", "graph.exp_deg=1"])
    out = tmp_path / "run"
    flipped = data.clone()
    flipped.y = 1 - flipped.y
    rescaled = data.clone()
    rescaled.x = rescaled.x * 3.0
    for graph in (data, flipped, rescaled):
        assert run(graph, cfg, out, progress=False)["stages"]["stage1"]["reused"] is None
    assert len(list(out.glob("scores-*.pt"))) == len(list(out.glob("estimator-*.pt"))) == 3
    assert run(rescaled, cfg, out, progress=False)["stages"]["stage1"]["reused"]
    assert run(data.clone(), cfg, out, progress=False)["stages"]["stage1"]["reused"]
