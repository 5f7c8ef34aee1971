"""A sample and its batch builder form no reference cycle: dropping the sample frees its tables at once."""

import gc
import weakref

import torch

from spexphormer.sampling import SampledLayers, batch_builder, iterate_batches


def test_a_dropped_sample_is_freed_without_the_cyclic_collector():
    n, k = 50, 3
    g = torch.Generator().manual_seed(0)
    layers = SampledLayers(neighbours=[torch.randint(0, n, (n, k), generator=g, dtype=torch.int32)],
                           edge_types=[torch.zeros(n, k, dtype=torch.int8)])
    batch_builder(layers)
    list(iterate_batches(torch.arange(n), 10, layers, shuffle=False, seed=0))
    table = weakref.ref(layers.neighbours[0])
    gc.disable()
    try:
        del layers
        assert table() is None  # freed by reference counting, as each epoch's sample must be
    finally:
        gc.enable()
