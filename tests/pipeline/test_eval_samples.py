"""Averaging predictions over several sampled graphs (``stage2.eval_samples``), checked against
the definition written with numpy: the mean of the predicted probabilities."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from spexphormer.errors import ConfigError
from spexphormer.pipeline import estimate, run
from spexphormer.pipeline.predict import predict
from spexphormer.pipeline.stage2 import layer_sampler, model_inputs, predict_nodes, train_wide
from spexphormer.presets import preset
from spexphormer.train import mean_prediction
from tests.helpers import make_toy_graph

FAST = ["stage1.epochs=6", "stage2.epochs=4", "stage2.batch_size=64", "run.seeds=1", "stage2.ks=4,3,3,3",
        "graph.exp_deg=2"]


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_mean_prediction_is_the_mean_probability():
    g = torch.Generator().manual_seed(0)
    outs = [torch.randn(50, 4, generator=g) * 3 for _ in range(3)]
    mean_p = np.mean([_np_softmax(o.double().numpy()) for o in outs], axis=0)
    got = mean_prediction(outs, "multiclass").softmax(-1).double().numpy()
    np.testing.assert_allclose(got, mean_p, rtol=1e-5, atol=1e-7)
    # binary and multilabel: log-odds of the mean probability, finite and ordered even when confident
    outs = [torch.tensor([[40.0], [-40.0], [0.5]]), torch.tensor([[38.0], [-45.0], [-0.5]])]
    logits = mean_prediction(outs, "binary").double().numpy()[:, 0]
    mean_p = np.mean([1 / (1 + np.exp(-o.double().numpy()[:, 0])) for o in outs], axis=0)
    np.testing.assert_allclose(logits[2], np.log(mean_p[2] / (1 - mean_p[2])), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(logits[:2], [-np.log(np.mean(np.exp([-40.0, -38.0]))),
                                            np.log(np.mean(np.exp([-40.0, -45.0])))], rtol=1e-5)
    one = [torch.randn(5, 2)]
    assert mean_prediction(one, "multiclass") is one[0]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_train_wide_reports_the_averaged_metrics(task):
    data = make_toy_graph(task=task)
    cfg = preset("minesweeper").override(FAST + ["stage2.eval_samples=3"])
    scores = estimate(data, cfg, progress=False).scores
    res = train_wide(data, scores, cfg, seed=1, progress=False)
    best = res.fit.history[res.fit.best_epoch]
    assert res.extra["one_sample"] == pytest.approx({"val": best["val"], "test": best["test"]}, abs=1e-6)
    # the reference: probabilities of the best model on the seed's first three samples, averaged
    model, x, sampler = res.model.eval(), model_inputs(data, cfg), layer_sampler(scores, cfg, 1)
    test = data.test_mask.nonzero().view(-1)
    with torch.no_grad():
        outs = [predict_nodes(model, x, test, sampler.sample(i), 64, "cpu").double().numpy() for i in range(3)]
    y = data.y[test].numpy()
    if task == "binary":
        p = np.mean([1 / (1 + np.exp(-o[:, 0])) for o in outs], axis=0)
        expected = roc_auc_score(y, p)
    else:
        expected = float((np.mean([_np_softmax(o) for o in outs], axis=0).argmax(-1) == y).mean())
    assert res.fit.test == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow  # a whole run, then predictions from its checkpoint
def test_predict_reproduces_the_run_and_checks_samples(tmp_path):
    data = make_toy_graph()
    cfg = preset("minesweeper").override(FAST + ["stage2.eval_samples=2", "run.seed=3"])
    res = run(data, cfg, tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "seed3" / "model.pt"
    test = data.test_mask.nonzero().view(-1)
    pred = predict(ckpt, data=data, nodes=test.tolist())  # the checkpoint's seed and eval_samples
    p = torch.sigmoid(pred["logits"].view(-1)).numpy()
    assert roc_auc_score(data.y[test].numpy(), p) == pytest.approx(res["test"]["mean"], abs=1e-9)
    one = predict(ckpt, data=data, nodes=test.tolist(), samples=1)
    assert not torch.allclose(one["logits"], pred["logits"])
    with pytest.raises(ConfigError, match="samples must be in 1..64"):
        predict(ckpt, data=data, samples=0)


def test_eval_samples_is_validated():
    for bad in ("0", "65"):
        with pytest.raises(ConfigError, match="stage2.eval_samples"):
            preset("minesweeper").override([f"stage2.eval_samples={bad}"])
