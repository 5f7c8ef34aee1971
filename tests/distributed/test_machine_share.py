"""One copy per machine: local rank 0 builds, every rank maps the same files; the scores folder
(checksummed, written by slices from every rank) holds what one process writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spexphormer.errors import ScoresMismatch
from spexphormer.graph import augment
from spexphormer.scores import Scores
from tests.distributed.spawn import run_ranks
from tests.helpers import make_toy_graph, mapped_file_of


def _scores(layers: int = 2) -> Scores:
    data = make_toy_graph(num_nodes=200, num_edges=1200, seed=2)
    g = augment(data.edge_index, data.num_nodes, exp_deg=2, seed=0)
    raw = torch.rand(layers, g.num_edges, generator=torch.Generator().manual_seed(3)) + 0.01
    sums = torch.zeros(layers, g.num_nodes).index_add_(1, g.dst.long(), raw)
    return Scores(raw / sums[:, g.dst.long()], g, "fp", metrics={"val": 0.5})


def _share(out: str) -> None:
    from spexphormer.distributed import world
    from spexphormer.distributed.machine_share import shared_graph, share_arrays
    from spexphormer.pipeline.stage1_sharded import node_shard, write_sharded_scores
    w = world()
    calls = Path(out) / f"built-by-{w.rank}"

    def load():
        calls.touch()
        return make_toy_graph(num_nodes=200, num_edges=1200, seed=2)

    data, want = shared_graph(load), make_toy_graph(num_nodes=200, num_edges=1200, seed=2)
    assert torch.equal(data.x, want.x) and torch.equal(data.edge_index, want.edge_index)
    assert torch.equal(data.train_mask, want.train_mask) and data.info == want.info
    files = {key: mapped_file_of(getattr(data, key).data_ptr()) for key in ("x", "y", "edge_index")}
    arrays, meta = share_arrays("extra", lambda: ({"a": torch.arange(5)}, {"n": 5}))
    assert torch.equal(arrays["a"], torch.arange(5)) and meta == {"n": 5}

    scores = _scores()
    shard = node_shard(scores.graph, w.rank, w.size)
    local = scores.scores[:, shard.edge_lo:shard.edge_hi]
    written = write_sharded_scores(scores, shard, local, Path(out) / "scores-sharded")
    assert torch.equal(written.scores, scores.scores)
    (Path(out) / f"files-{w.rank}.json").write_text(json.dumps(files))


@pytest.mark.slow
def test_local_rank_zero_builds_and_every_rank_maps_the_same_files(tmp_path):
    run_ranks(_share, 2, str(tmp_path))
    assert (tmp_path / "built-by-0").exists() and not (tmp_path / "built-by-1").exists()
    files = [json.loads((tmp_path / f"files-{r}.json").read_text()) for r in range(2)]
    assert files[0] == files[1] and all(f and f.endswith(f"/graph/{k}.npy") for k, f in files[0].items())
    assert not Path(files[0]["x"]).exists()  # the job folder is gone once the job ended
    one = tmp_path / "scores-one"
    _scores().save(one)
    for name in ("edge_index", "edge_type", "ptr", "scores"):  # byte for byte what one process writes
        assert (one / f"{name}.npy").read_bytes() == (tmp_path / "scores-sharded" / f"{name}.npy").read_bytes()


def test_scores_folder_round_trip_and_corruption(tmp_path):
    scores = _scores()
    folder = scores.save(tmp_path / "scores-x")
    assert folder.is_dir() and (folder / "manifest.json").is_file()
    back = Scores.load(folder, fingerprint="fp")
    assert torch.equal(back.scores, scores.scores) and torch.equal(back.graph.edge_index, scores.graph.edge_index)
    assert back.metrics == {"val": 0.5} and mapped_file_of(back.scores.data_ptr()) == str(folder / "scores.npy")
    file = scores.save(tmp_path / "scores-x.pt")  # the one-file format still writes and loads
    assert torch.equal(Scores.load(file).scores, back.scores)
    with pytest.raises(ScoresMismatch, match="another graph"):
        Scores.load(folder, fingerprint="other")
    raw = np.load(folder / "scores.npy", mmap_mode="r+")
    raw[0, 0] += 0.25
    raw.flush()
    del raw, back
    with pytest.raises(ScoresMismatch, match="corrupt"):
        Scores.load(folder)
    (folder / "edge_type.npy").unlink()
    with pytest.raises(ScoresMismatch, match="missing array file edge_type.npy"):
        Scores.load(folder)


def _sample(out: str) -> None:
    from spexphormer.distributed import world
    from spexphormer.distributed.machine_share import SharedSamples, job_folder
    from spexphormer.distributed.world import barrier
    from spexphormer.sampling import LayerSampler, sample_layers
    w, scores = world(), _scores()
    sampler = LayerSampler(scores, [3, 2], seed=5, share=SharedSamples())
    g = scores.graph
    for epoch in (0, 1):
        layers = sampler.layers_for(epoch)
        want = sample_layers(g.ptr, g.src, g.edge_type, scores.scores, [3, 2], seed=5, epoch=epoch)
        assert all(torch.equal(a, b) for a, b in zip(layers.neighbours, want.neighbours))
        assert all(torch.equal(a, b) for a, b in zip(layers.edge_types, want.edge_types))
        # the machine's one copy, mapped by every rank
        assert mapped_file_of(layers.neighbours[0].data_ptr()).startswith(str(job_folder()))
    barrier()
    (Path(out) / f"folders-{w.rank}.json").write_text(json.dumps(sorted(p.name for p in job_folder().glob("sample-*"))))


@pytest.mark.slow
def test_every_rank_maps_the_one_sample_its_machine_draws(tmp_path):
    run_ranks(_sample, 2, str(tmp_path))
    folders = [json.loads((tmp_path / f"folders-{r}.json").read_text()) for r in range(2)]
    assert folders[0] == folders[1] and len(folders[0]) == 1  # the earlier sample's folder is removed
