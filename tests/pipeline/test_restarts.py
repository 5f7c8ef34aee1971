"""``stage1.restarts``: several estimators from different initial weights, the best by validation
exports the scores; each restart is exactly the estimator its seed gives alone, and resumes alone."""

from __future__ import annotations

import pytest
import torch

from spexphormer.config import RESTART_STRIDE
from spexphormer.errors import ConfigError
from spexphormer.pipeline.stage1 import estimate
from spexphormer.presets import preset
from tests.helpers import RESUMABLE, cli_run, kill_when, make_toy_graph, run_outcome, write_graph_file

BASE = ["stage1.epochs=6", "stage1.temp_wait=2", "graph.exp_deg=2", "stage1.seed=3"]


def test_restarts_keep_the_estimator_with_the_best_validation(toy_graph):
    chosen = estimate(toy_graph, preset("cora").override(BASE + ["stage1.restarts=3"]), progress=False)
    # the independent reference: each restart's seed trained alone, as the single estimator
    alone = [estimate(toy_graph, preset("cora").override(BASE[:-1] + [f"stage1.seed={3 + RESTART_STRIDE * i}"]),
                      progress=False) for i in range(3)]
    tried = chosen.scores.metrics["restarts"]
    assert [t["seed"] for t in tried] == [3, 3 + RESTART_STRIDE, 3 + 2 * RESTART_STRIDE]
    assert [t["val"] for t in tried] == [a.fit.val for a in alone]
    assert [t["test"] for t in tried] == [a.fit.test for a in alone]
    best = max(range(3), key=lambda i: (alone[i].fit.val, -i))  # the first of equal validations
    assert chosen.fit.val == alone[best].fit.val and chosen.fit.best_epoch == alone[best].fit.best_epoch
    assert torch.equal(chosen.scores.scores, alone[best].scores.scores)
    assert len({a.fit.val for a in alone}) > 1 or best == 0  # the restarts differ (else the test proves little)


def test_one_restart_is_the_single_estimator(toy_graph):
    res = estimate(toy_graph, preset("cora").override(BASE), progress=False)
    assert "restarts" not in res.scores.metrics


@pytest.mark.parametrize("value", ["0", "101"])
def test_restarts_out_of_range_are_refused(value):
    with pytest.raises(ConfigError, match="stage1.restarts"):
        preset("cora").override([f"stage1.restarts={value}"])


@pytest.mark.slow
def test_a_run_killed_in_a_later_restart_resumes_to_the_uninterrupted_result(tmp_path):
    graph = write_graph_file(tmp_path / "toy.pt")
    extra = ["--set", "stage1.restarts=2", "--set", "stage1.epochs=30"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert cli_run(graph, ref, *RESUMABLE, *extra).wait() == 0
    killed = kill_when(cli_run(graph, out, *RESUMABLE, *extra), out / "stage1.attempt1.state.pt", 0.2)
    assert killed, "the run finished before the kill"
    assert (out / "stage1.attempt1.state.pt").exists() and not list(out.glob("scores-*"))
    assert cli_run(graph, out, *RESUMABLE, *extra, "--resume").wait() == 0
    assert run_outcome(out) == run_outcome(ref)
    (a,), (b,) = ref.glob("scores-*.pt"), out.glob("scores-*.pt")
    assert torch.equal(torch.load(a)["scores"], torch.load(b)["scores"])
    assert not list(out.glob("stage1*.state.pt"))  # every restart's snapshots discarded at the end
    assert (out / "stage1.attempt1.jsonl").is_file()


def test_an_estimator_near_chance_is_warned_about(toy_graph):
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import accuracy_score

    from spexphormer.pipeline.stage1 import NEAR_CHANCE, warn_if_near_chance
    from spexphormer.train import FitResult, chance_level

    data = make_toy_graph(task="multiclass")
    y = data.y[data.val_mask].numpy()
    majority = DummyClassifier(strategy="most_frequent").fit(y.reshape(-1, 1), y)  # the independent reference
    chance = accuracy_score(y, majority.predict(y.reshape(-1, 1)))
    assert chance_level(data.y[data.val_mask], "multiclass", "accuracy") == pytest.approx(chance)
    assert chance_level(data.y, "binary", "rocauc") == 0.5
    with pytest.warns(UserWarning, match="near chance.*stage1.restarts"):
        warn_if_near_chance(data, FitResult(best_epoch=3, val=chance + 0.01, test=0.0))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_near_chance(data, FitResult(best_epoch=3, val=chance + NEAR_CHANCE["accuracy"] + 0.01, test=0.0))
