"""Single-process behaviour of the distributed pieces: shards, and norms that equal their parents."""

import pytest
import torch
from torch import nn

from spexphormer.distributed import shard_range, world
from spexphormer.distributed.synced_norms import SyncedBatchNorm1d, SyncedGraphNorm, sync_norms
from spexphormer.nn import Spexphormer
from spexphormer.nn.norms import GraphNorm


@pytest.mark.parametrize("n, size", [(10, 3), (2, 2), (7, 1), (1, 4)])
def test_shard_ranges_are_contiguous_balanced_and_cover_all_rows(n, size):
    ranges = [shard_range(n, r, size) for r in range(size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    lengths = [hi - lo for lo, hi in ranges]
    assert max(lengths) - min(lengths) <= 1


def test_synchronised_norms_keep_the_state_dict_and_act_as_their_parents_in_one_process():
    assert not world().active
    torch.manual_seed(0)
    model = Spexphormer(6, 2, 8, 2, 2, norm="graph")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = {name: m for name, m in model.named_modules() if type(m) in (nn.BatchNorm1d, GraphNorm)}
    sync_norms(model)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in before.items()}
    for name, module in model.named_modules():
        if name in plain:
            assert isinstance(module, (SyncedBatchNorm1d, SyncedGraphNorm))
            x = torch.randn(5, module.weight.numel())
            torch.testing.assert_close(module(x), plain[name](x))
