import pytest

from spexphormer.config import Config
from spexphormer.presets import PRESETS, preset
from spexphormer.errors import ConfigError


def test_presets_hold_the_reference_hyper_parameters():
    m = PRESETS["minesweeper"]
    assert (m.stage1.hidden, m.stage1.num_layers, m.stage1.temp_ratio, m.stage1.temp_wait) == (4, 4, 0.99, 5)
    assert (m.stage2.hidden, m.stage2.heads, m.stage2.ks, m.stage2.batch_size) == (32, 4, (12, 5, 5, 5), 100_000)
    t = PRESETS["tolokers"]
    assert t.stage1.temp_ratio == 1.0 and t.stage2.ks == (12, 10, 10, 10) and t.stage2.epochs == 200
    a = PRESETS["actor"]
    assert a.stage2.num_layers == 3 and a.stage2.ks == (2, 2, 2) and a.stage1.temp_wait == 20
    assert PRESETS["ogbn-proteins"].graph.exp_deg == 100


def test_override_parses_types_and_round_trips():
    cfg = preset("minesweeper").override(["stage2.ks=3,3,3,3", "stage1.lr=0.05", "run.seeds=2",
                                          "stage2.sampler=topk"])
    assert cfg.stage2.ks == (3, 3, 3, 3) and cfg.stage1.lr == 0.05 and cfg.run.seeds == 2
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert "ks = 3,3,3,3" in cfg.format()


def test_stage1_key_depends_on_stage1_only():
    base = preset("minesweeper")
    assert base.stage1_key() == base.override(["stage2.epochs=3"]).stage1_key()
    assert base.stage1_key() != base.override(["stage1.epochs=3"]).stage1_key()


@pytest.mark.parametrize("assignment, message", [
    ("stage3.epochs=1", "unknown config section"),
    ("stage2.epoch=1", "unknown config key"),
    ("stage2.epochs=many", "cannot read"),
    ("stage2.epochs", "not of the form"),
    ("stage2.ks=5,5", "stage2.ks has 2 entries"),
    ("stage2.sampler=magic", "stage2.sampler must be one of"),
    ("stage1.dropout=1.5", "stage1.dropout"),
    ("stage2.heads=3", "divisible"),
    ("stage1.temp_ratio=1.5", "at most 1"),
])
def test_bad_overrides_are_one_line_errors(assignment, message):
    with pytest.raises(ConfigError, match=message) as info:
        preset("minesweeper").override([assignment])
    assert "\n" not in str(info.value)


def test_unknown_dataset_gets_the_default_preset():
    assert preset("my-graph") == preset(None) == preset("minesweeper")


def test_ks_shows_the_per_type_widths_and_yields_to_a_switch_in_one_override():
    local = preset(None, "local-attention")
    assert local.stage2.ks == tuple(1 + g + x for g, x in zip(local.stage2.graph_ks, local.stage2.expander_ks))
    assert local.override(["stage2.graph_ks=3,3"]).stage2.ks == (6, 6)  # derived, in one place
    # a config file of the paper model applied on top of a local preset: the order of keys does not matter
    paper = local.override(["stage2.model=spexphormer", "stage2.num_layers=3", "stage2.ks=2,2,2",
                            "stage2.graph_ks=", "stage2.expander_ks="])
    assert paper.stage2.ks == (2, 2, 2) and paper.stage2.graph_ks == ()
