"""Stage 2 reads through PyG's FeatureStore / GraphStore: a second, independent in-memory
implementation of both gives the same sampled tables and the same batch outputs."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import FeatureStore, GraphStore
from torch_geometric.data.feature_store import TensorAttr
from torch_geometric.data.graph_store import EdgeAttr

from spexphormer.data.stores import EDGE, MappedFeatureStore
from spexphormer.graph import augment
from spexphormer.pipeline.stage2 import build_wide_model, forward_batch, layer_sampler
from spexphormer.presets import preset
from spexphormer.sampling import iterate_batches
from spexphormer.scores import Scores
from tests.helpers import make_toy_graph


class DictFeatureStore(FeatureStore):
    """Copies of whole tensors in a dict; rows gathered with index_select."""

    def __init__(self):
        super().__init__()
        self.items = {}

    def _put_tensor(self, tensor, attr: TensorAttr) -> bool:
        self.items[attr.group_name + "/" + attr.attr_name] = torch.as_tensor(tensor).clone()
        return True

    def _get_tensor(self, attr: TensorAttr):
        t = self.items.get(attr.group_name + "/" + attr.attr_name)
        return t if t is None or attr.index is None else t.index_select(0, torch.as_tensor(attr.index).long())

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        return self.items.pop(attr.group_name + "/" + attr.attr_name, None) is not None

    def _get_tensor_size(self, attr: TensorAttr):
        return tuple(self.items[attr.group_name + "/" + attr.attr_name].shape)

    def get_all_tensor_attrs(self):
        return [TensorAttr(*key.split("/")) for key in self.items]


class CooGraphStore(GraphStore):
    """Keeps the edges as COO and builds the CSC view on request."""

    def __init__(self):
        super().__init__()
        self.coo, self.n = None, 0

    def _put_edge_index(self, edge_index, edge_attr: EdgeAttr) -> bool:
        self.coo, self.n = (edge_index[0].clone(), edge_index[1].clone()), edge_attr.size[0]
        return True

    def _get_edge_index(self, edge_attr: EdgeAttr):
        if edge_attr.layout.value != "csc":
            return self.coo
        src, dst = self.coo  # already grouped by destination (stable): offsets from the counts
        ptr = torch.zeros(self.n + 1, dtype=torch.int64)
        ptr[1:] = torch.bincount(dst.long(), minlength=self.n).cumsum(0)
        return src, ptr

    def _remove_edge_index(self, edge_attr) -> bool:
        self.coo = None
        return True

    def get_all_edge_attrs(self):
        return [EdgeAttr(EDGE, "coo", is_sorted=True, size=(self.n, self.n))]


def _scores(data, layers: int = 2) -> Scores:
    g = augment(data.edge_index, data.num_nodes, exp_deg=2, seed=0)
    raw = torch.rand(layers, g.num_edges, generator=torch.Generator().manual_seed(3)) + 0.01
    sums = torch.zeros(layers, g.num_nodes).index_add_(1, g.dst.long(), raw)
    return Scores(raw / sums[:, g.dst.long()], g, "fp")


def test_a_batch_through_another_store_implementation_gives_the_same_outputs(tmp_path):
    data = make_toy_graph(num_nodes=300, num_edges=2000, seed=5)
    cfg = preset(None).override(["stage2.num_layers=2", "stage2.ks=6,4", "stage2.dropout=0", "graph.exp_deg=2"])
    scores = _scores(data)
    folder = tmp_path / "features"
    folder.mkdir()
    np.save(folder / "x.npy", data.x.numpy())
    mapped = MappedFeatureStore.from_folder(folder)  # the default: memory-mapped .npy
    other, graph = DictFeatureStore(), CooGraphStore()
    other.put_tensor(data.x, group_name="node", attr_name="x", index=None)
    other.put_tensor(scores.graph.edge_type, group_name="edge", attr_name="type", index=None)
    other.put_tensor(scores.scores, group_name="edge", attr_name="scores", index=None)
    graph.put_edge_index((scores.graph.src, scores.graph.dst), edge_type=EDGE, layout="coo", is_sorted=True,
                         size=(data.num_nodes, data.num_nodes))

    ours, theirs = layer_sampler(scores, cfg, seed=7), layer_sampler(None, cfg, seed=7, stores=(other, graph))
    a, b = ours.layers_for(0), theirs.layers_for(0)
    assert all(torch.equal(x, y) for x, y in zip(a.neighbours + a.edge_types, b.neighbours + b.edge_types))
    torch.manual_seed(0)
    model = build_wide_model(data, cfg).eval()
    nodes = data.train_mask.nonzero().view(-1)
    batch_a = next(iter(iterate_batches(nodes, 32, a, shuffle=True, seed=1)))
    batch_b = next(iter(iterate_batches(nodes, 32, b, shuffle=True, seed=1)))
    with torch.no_grad():
        out_a = forward_batch(model, mapped, batch_a, torch.device("cpu"))
        out_b = forward_batch(model, other, batch_b, torch.device("cpu"))
        out_x = forward_batch(model, data.x, batch_a, torch.device("cpu"))  # a plain tensor: wrapped
    assert torch.equal(out_a, out_b) and torch.equal(out_a, out_x)
