"""Train Spexphormer on your own PyG ``Data`` from Python (both stages, one seed).

    python examples/train_on_my_data.py      # writes runs/my-graph/: results, logs, curves, model
"""
import torch
from torch_geometric.data import Data
from torch_geometric.utils import stochastic_blockmodel_graph

from spexphormer.presets import preset
from spexphormer.data import from_pyg
from spexphormer.pipeline import results_table, run

# Your graph: any Data with x, y and edge_index (here 4 communities; masks optional).
torch.manual_seed(0)
y = torch.arange(4).repeat_interleave(250)
edge_index = stochastic_blockmodel_graph([250] * 4, torch.full((4, 4), 0.004) + 0.016 * torch.eye(4))
x = torch.nn.functional.one_hot(y, 4).float() + 1.5 * torch.randn(1000, 4)
data = from_pyg(Data(x=x, y=y, edge_index=edge_index), name="my-graph")   # seeded 60/20/20 split

cfg = preset(None).override(["run.seeds=1", "stage1.epochs=20", "stage2.epochs=20", "graph.exp_deg=3",
                             "stage2.batch_size=256", "stage2.ks=6,4,4,4"])
results = run(data, cfg, out="runs/my-graph", progress=False)
print(results_table(results))
