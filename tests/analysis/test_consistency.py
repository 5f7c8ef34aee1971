"""run_consistency end to end on a small graph, and its input checks."""

import json

import pytest

from spexphormer.analysis.consistency import consistency_table, run_consistency
from spexphormer.presets import preset
from spexphormer.errors import ConfigError
from tests.helpers import make_toy_graph

SMALL = ["graph.exp_deg=2", "stage1.num_layers=2", "stage2.ks=3,3,3,3", "run.device=cpu"]


@pytest.mark.slow  # end to end: several stages and runs
def test_run_consistency_smoke(tmp_path):
    data = make_toy_graph(num_nodes=200, num_edges=1200)
    cfg = preset("minesweeper").override(SMALL)
    res = run_consistency(data, cfg, [2, 4], tmp_path / "out", epochs=3, progress=False)

    on_disk = json.loads((tmp_path / "out" / "consistency.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert res["widths"] == [2, 4] and res["reference_width"] == 4 and res["k"] == 3 and res["epochs"] == 3
    assert res["dataset"] == "toy" and res["split"] and res["metric"] == "rocauc"
    assert set(res["settings"]) == {"with_expander", "without_expander"}
    with_exp, without = res["settings"]["with_expander"], res["settings"]["without_expander"]
    assert without["exp_deg"] == 0 and with_exp["exp_deg"] == 2
    assert without["num_edges"] == data.edge_index.size(1) + data.num_nodes
    assert with_exp["num_edges"] == without["num_edges"] + 4 * data.num_nodes
    for setting in (with_exp, without):
        assert set(setting["compare"]) == {"2", "uniform", "random"}  # the reference is not compared
        assert set(setting["estimators"]) == {"2", "4"}
        assert all(0.0 <= e["test"] <= 1.0 for e in setting["estimators"].values())
        for rows in setting["compare"].values():
            assert [r["layer"] for r in rows] == [0, 1]
            assert all(0.0 <= r["energy"] <= 2.0 and 0.0 <= r["topk"] <= 1.0 for r in rows)

    png = (tmp_path / "out" / "consistency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    table = consistency_table(res)
    for text in ("width 2", "width 4", "uniform", "random", "no expander", "energy L2", "top-3 L1", "test rocauc", "best epoch"):
        assert text in table
    assert len(table.splitlines()) == 2 * 4 + 3  # title, header, rule, 2 settings x (2 widths + 2 baselines)


def test_one_setting_only(tmp_path):
    data = make_toy_graph(num_nodes=120, num_edges=600)
    cfg = preset("minesweeper").override(SMALL)
    res = run_consistency(data, cfg, [4, 2], tmp_path, epochs=1, progress=False, with_expander=(False,))
    assert list(res["settings"]) == ["without_expander"]
    assert res["reference_width"] == 4


@pytest.mark.parametrize("widths", [[4], [], [0, 4], [4, -1], [4, 4]])
def test_bad_widths(tmp_path, widths):
    with pytest.raises(ConfigError, match="width"):
        run_consistency(make_toy_graph(num_nodes=50, num_edges=200), preset("minesweeper"), widths, tmp_path)
    assert not (tmp_path / "consistency.json").exists()


def test_bad_epochs(tmp_path):
    with pytest.raises(ConfigError, match="epochs"):
        run_consistency(make_toy_graph(num_nodes=50, num_edges=200), preset("minesweeper"), [2, 4], tmp_path,
                        epochs=0)
