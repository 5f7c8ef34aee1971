"""`--model` and the local-attention presets: config, CLI parsing, errors, and an end-to-end run."""

import json

import pytest

from spexphormer.cli import main
from spexphormer.presets import LOCAL_PRESETS, PRESETS, preset
from spexphormer.errors import ConfigError
from tests.helpers import FAST, write_graph_file


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_paper_presets_are_unchanged_and_local_presets_share_stage1():
    for name, cfg in PRESETS.items():
        assert cfg.stage2.model == "spexphormer" and cfg.stage2.graph_ks == ()
        assert preset(name).to_dict() == cfg.to_dict()
    for name, cfg in LOCAL_PRESETS.items():
        assert cfg.stage2.model == "local-attention"
        assert len(cfg.stage2.graph_ks) == len(cfg.stage2.expander_ks) == cfg.stage2.num_layers
        # one scores file serves both models
        assert cfg.stage1_key() == PRESETS[name].stage1_key()
    # a dataset without its own local preset: its graph and stage 1, the default local stage 2
    photo = preset("photo", "local-attention")
    assert photo.stage1_key() == PRESETS["photo"].stage1_key() and photo.stage2.model == "local-attention"
    assert preset(None, "local-attention").stage2.model == "local-attention"


def test_bad_local_settings_are_config_errors():
    with pytest.raises(ConfigError, match="need stage2.model=local-attention"):
        preset("minesweeper").override(["stage2.graph_ks=8,8,8,8", "stage2.expander_ks=1,1,1,1"])
    with pytest.raises(ConfigError, match="graph_ks has 2 entries"):
        preset("minesweeper", "local-attention").override(["stage2.graph_ks=8,8"])
    with pytest.raises(ConfigError, match="stage2.local must be one of"):
        preset("cora", "local-attention").override(["stage2.local=gat"])
    with pytest.raises(ConfigError, match="stage2.model must be one of"):
        preset("cora").override(["stage2.model=gpt"])
    with pytest.raises(ConfigError, match="unknown model"):
        preset("cora", "gpt")
    with pytest.raises(ConfigError, match="stage2.feature_hops must be non-negative"):
        preset("tolokers", "local-attention").override(["stage2.feature_hops=-1"])
    with pytest.raises(ConfigError, match="stage2.feature_hops must be at most 8"):
        preset("tolokers", "local-attention").override(["stage2.feature_hops=1000"])


def test_cli_model_selects_the_model_and_its_preset(capsys):
    assert main(["config", "--dataset", "minesweeper", "--model", "local-attention", "--format", "json"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["stage2"]["model"] == "local-attention"
    assert cfg["stage2"]["graph_ks"] == list(LOCAL_PRESETS["minesweeper"].stage2.graph_ks)
    assert main(["config", "--dataset", "minesweeper"]) == 0
    assert "model = spexphormer" in capsys.readouterr().out
    assert main(["config", "--dataset", "minesweeper", "--model", "local-attention",
                 "--set", "stage2.local=gated"]) == 0
    assert "local = gated" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["config", "--dataset", "cora"], ["run", "--dataset", "cora"],
                                     ["train", "--dataset", "cora", "--scores", "x.pt"]])
def test_cli_bad_model_is_one_error_line(command, capsys):
    assert main([*command, "--model", "transformer"]) == 2
    assert "unknown model 'transformer'" in _error_line(capsys)


def test_help_lists_the_models(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--model NAME" in out and "local-attention" in out


@pytest.mark.slow
def test_local_attention_end_to_end_through_the_cli(tmp_path, capsys):
    path = write_graph_file(tmp_path / "toy.pt")
    out = tmp_path / "out"
    assert main(["run", "--data", str(path), "--model", "local-attention", "--seeds", "1", "--out", str(out),
                 *FAST, "--set", "stage2.epochs=15"]) == 0
    assert "local-attention (1 seeds)" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "local-attention" and results["config"]["stage2"]["graph_ks"]
    # The toy labels leak into features and neighbours. Test ROC-AUC measured over stage1/graph/run
    # seed 0..9 (1 thread) and 0..4 (2 threads; ATEN_CPU_CAPABILITY=default with
    # MKL_ENABLE_INSTRUCTIONS=AVX2), 20 runs: min 0.727, mean 0.801, max 0.837; with lr 1e-12 in
    # both stages (learned nothing; 60 test nodes, so chance alone spreads widely): 0.39, 0.46,
    # 0.60, 0.51 (seeds 0..3) -- the old bound 0.6 let one through. 0.67 sits 0.057 below the lowest
    # trained run and 0.066 above the highest untrained one.
    assert results["test"]["mean"] > 0.67
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--checkpoint", str(out / "seed0" / "model.pt"), "--nodes", "1,2,3",
                 "--out", str(pred)]) == 0
    assert len(pred.read_text().splitlines()) == 4
    scores = next(out.glob("scores-*.pt"))
    assert main(["train", "--data", str(path), "--model", "local-attention", "--scores", str(scores),
                 "--seeds", "1", "--out", str(tmp_path / "t"), *FAST]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["local-attention", "exphormer"])
def test_whole_graph_inputs_reach_training_and_prediction(model, tmp_path):
    """degree_feature and feature_hops widen the model's input; predict recomputes the same columns."""
    import torch

    from spexphormer.pipeline.predict import predict
    path = write_graph_file(tmp_path / "toy.pt")
    out = tmp_path / "out"
    extra = ["--set", "stage2.degree_feature=true", "--set", "stage2.feature_hops=2"]
    if model == "exphormer":
        assert main(["train", "--data", str(path), "--model", "exphormer", "--seeds", "1", "--out", str(out),
                     *FAST, *extra]) == 0
    else:
        assert main(["run", "--data", str(path), "--model", model, "--seeds", "1", "--out", str(out),
                     *FAST, *extra]) == 0
    ckpt = torch.load(out / "seed0" / "model.pt", weights_only=False)
    assert ckpt["model_args"]["in_dim"] == (6 + 1) * 3
    result = predict(out / "seed0" / "model.pt")
    assert result["logits"].shape[0] == 300 and torch.isfinite(result["logits"]).all()


@pytest.mark.parametrize("args, model", [
    (["--data", "GRAPH"], "local-attention"),                          # a graph of your own: the better model
    (["--data", "GRAPH", "--model", "spexphormer"], "spexphormer"),   # the paper's, on request
    (["--data", "GRAPH", "--preset", "actor"], "spexphormer"),        # another dataset's preset: its model
    (["--dataset", "cora"], "spexphormer"),                           # named datasets reproduce the paper
])
def test_default_model_for_your_own_graph(args, model, graph_file, capsys):
    argv = ["config", *[str(graph_file) if a == "GRAPH" else a for a in args], "--format", "json"]
    assert main(argv) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["stage2"]["model"] == model
    if model == "local-attention":
        assert cfg == preset(None, "local-attention").to_dict()
