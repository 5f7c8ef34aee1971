"""Differential test of our estimator (stage 1) against the authors' released code, layer by layer.

Measures, on one real graph (Minesweeper by default) with one augmented edge list fed to both
sides, the largest absolute and relative differences between the authors' ASE network (built by
their GraphGym config machinery from ``<ref-dir>/configs/heterophilic/<name>/<name>_ASE.yaml``)
and our ``AttentionScoreEstimator`` holding the same weights:

* the forward activations of every block (input map, pre-layer, each layer's attention output,
  first norm and output), the logits and the loss, in training mode at T = 1;
* the exported attention scores of every layer (their own export path, ``saving_epoch``, which
  writes the ``.npy`` files stage 2 reads), at T = 1 and at an annealed temperature;
* every parameter's gradient, the clipped gradient norm, and every parameter after one AdamW step
  (lr 0.01, weight decay 1e-3, clip 1.0, as both trainers do);
* the learning-rate sequences of both schedules (their ``cosine_with_warmup`` against
  ``spexphormer.train.schedule.cosine_with_warmup``);
* with ``--epochs N``: both estimators trained N epochs from the same weights (their loop's order
  of operations against our ``fit``), the curves and best epochs side by side;
* the wide model (``--model wide|both``): their ``SpExphormer_Network`` from the stage-2 config
  against our ``Spexphormer`` on one identical neighbour table (their batch format and ours built
  from the same sampled slots), dropout 0: forward per block, logits in training and evaluation
  mode, loss, gradients, one step; and ours with their reshape of the gated keys ``(n, k, H, d)``
  into ``(n*H, k, d)`` re-derived (``reshaped_attention``), to show whether that pairing of logits,
  heads and neighbours is the whole difference (``--wide-heads 1`` takes it out of the comparison).

    python benchmarks/reference_diff.py --ref-dir /work/ref/Sp_Exphormer --python /work/ref/venv/bin/python

The authors' side runs in their virtualenv as a child process (``--side reference``, importing only
from ``--ref-dir``; their code never enters this repository), in a scratch folder (``--work``);
the two sides exchange weights, inputs and results as ``.pt`` files there. Their weights (their
initialisation, seeded) are copied into ours through the explicit name map in ``weight_map``.
Ours runs twice: on the edge list (autograd through the sparse kernels) and through the fused CPU
CSR kernels that training uses. Prints a table and writes ``results/reference_diff.json``
(``--out`` elsewhere). One thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

CONFIGS = {"minesweeper": ("configs/heterophilic/minesweeper/minesweeper_ASE.yaml", "Minesweeper"),
           "tolokers": ("configs/heterophilic/tolokers/tolokers_ASE.yaml", "Tolokers")}
LR, WD, CLIP = 0.01, 1e-3, 1.0
ANNEALED_EPOCH = 30  # an epoch after temp_wait: T = max(temp_min, ratio ** (epoch - wait))


# --------------------------------------------------------------------------------------------
# the authors' side (runs under their interpreter; imports only from --ref-dir)
# --------------------------------------------------------------------------------------------

def reference_side(args) -> None:
    import argparse as ap

    import numpy as np

    sys.path.insert(0, args.ref_dir)
    import spexphormer  # noqa: F401  (their package: registers layers, encoders, heads, schedulers)
    from torch_geometric.data import Data
    from torch_geometric.graphgym.config import cfg, load_cfg, set_cfg
    from torch_geometric.graphgym.loss import compute_loss
    from torch_geometric.graphgym.register import network_dict, scheduler_dict

    if not spexphormer.__file__.startswith(str(Path(args.ref_dir).resolve())):
        raise SystemExit(f"error: imported {spexphormer.__file__}, not the reference package")
    torch.set_num_threads(1)
    work = Path(args.work)
    inp = torch.load(work / "inputs.pt")
    cfg_file, name = CONFIGS[args.dataset]
    set_cfg(cfg)
    load_cfg(cfg, ap.Namespace(cfg_file=str(Path(args.ref_dir) / cfg_file),
                               opts=["wandb.use", "False", "accelerator", "cpu", "gpu_mem", "False"]))
    cfg.share.dim_in, cfg.share.dim_out = inp["x"].size(1), inp["out_dim"]
    cfg.train.cur_epoch, cfg.train.saving_epoch = 0, False
    torch.manual_seed(args.seed)
    model = network_dict[cfg.model.type](cfg.share.dim_in, cfg.share.dim_out)
    init_state = {k: v.clone() for k, v in model.state_dict().items()}

    def batch(split):
        n = inp["x"].size(0)
        b = Data(x=inp["x"].clone(), y=inp["y"].clone(), edge_index=inp["edge_index"].clone(),
                 edge_attr=inp["edge_type"].clone(), train_mask=inp["train_mask"], val_mask=inp["val_mask"],
                 test_mask=inp["test_mask"], batch=torch.zeros(n, dtype=torch.long))
        if split is not None:  # their head keeps the split's rows; without one, every node
            b.split = split
        return b

    acts, type_out = {}, {}

    def grab(key, attr=True):
        def hook(_m, _i, out):
            acts[key] = (out.x if attr else out).detach().clone()
        return hook

    handles = [model.encoder.node_encoder.register_forward_hook(grab("encoder.input")),
               model.pre_mp.register_forward_hook(grab("encoder.pre")),
               model.post_mp.layer_post_mp.register_forward_hook(grab("logits"))]
    for i, layer in enumerate(model.layers):
        al = layer.attention_layer
        handles += [al.self_attn.register_forward_hook(grab(f"layer{i}.attn", attr=False)),
                    al.register_forward_hook(grab(f"layer{i}.norm1", attr=False)),
                    layer.register_forward_hook(grab(f"layer{i}.out"))]

        def keep(key):
            def hook(_m, _i, out):
                out.retain_grad()
                type_out[key] = out
            return hook
        handles += [al.self_attn.E1.register_forward_hook(keep(f"layer{i}.E1")),
                    al.self_attn.E2.register_forward_hook(keep(f"layer{i}.E2"))]

    # 1. training-mode forward at T = 1, loss, gradients, one AdamW step
    model.train()
    pred, true = model(batch("train"))
    loss, _ = compute_loss(pred, true)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    type_grads = {k: v.grad.detach().clone() for k, v in type_out.items()}
    type_values = {k: v.detach().clone() for k, v in type_out.items()}
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    opt.step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_acts = dict(acts)

    # 2. the exported scores (their saving path), eval mode, from the initial weights
    for h in handles:
        h.remove()
    exported = {}
    cwd = os.getcwd()
    for tag, epoch in (("T1", 0), ("annealed", ANNEALED_EPOCH)):
        model.load_state_dict(init_state)
        model.eval()
        for layer in model.layers:
            layer.attention_layer.self_attn.T = 1.0
        out_dir = work / f"export_{tag}"
        out_dir.mkdir(exist_ok=True)
        os.chdir(out_dir)
        try:
            cfg.train.cur_epoch, cfg.train.saving_epoch = epoch, True
            with torch.no_grad():
                model(batch("val"))
            cfg.train.saving_epoch = False
        finally:
            os.chdir(cwd)
        T = model.layers[0].attention_layer.self_attn.T
        files = sorted((out_dir / "Attention_scores" / name).glob(f"seed{cfg.seed}_h*_layer_*.npy"))
        exported[tag] = {"T": T, "scores": [torch.from_numpy(np.load(f)).reshape(len(inp["edge_type"]), -1)
                                            for f in sorted(files, key=lambda p: int(p.stem.rsplit("_", 1)[1]))]}

    # 3. their learning-rate schedule, as their loop uses it (scheduler.step() once per epoch)
    dummy = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim.base_lr)
    sched = scheduler_dict[cfg.optim.scheduler](dummy, cfg.optim.num_warmup_epochs, cfg.optim.max_epoch)
    lrs = []
    for _ in range(cfg.optim.max_epoch):
        lrs.append(dummy.param_groups[0]["lr"])
        dummy.step()
        sched.step()

    curve = reference_curve(model, init_state, batch, cfg, compute_loss, scheduler_dict, args.epochs) \
        if args.epochs else None
    torch.save({"init": init_state, "acts": train_acts, "curve": curve, "loss": loss.detach(), "grads": grads,
                "type_grads": type_grads, "type_values": type_values, "grad_norm": gnorm, "after": after,
                "exported": exported, "lrs": lrs, "params": sum(p.numel() for p in model.parameters()),
                "cfg": {"temp_rdc_ratio": cfg.train.temp_rdc_ratio, "temp_wait": cfg.train.temp_wait,
                        "temp_min": cfg.train.temp_min, "base_lr": cfg.optim.base_lr,
                        "warmup": cfg.optim.num_warmup_epochs, "max_epoch": cfg.optim.max_epoch,
                        "bn_eps": cfg.bn.eps, "bn_mom": cfg.bn.mom, "l2norm": cfg.gnn.l2norm,
                        "gnn_batchnorm": cfg.gnn.batchnorm, "round": cfg.round}},
               work / "reference_out.pt")


def _auc(pred, true, mask):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(true[mask].numpy(), pred[mask].squeeze(-1).detach().numpy()))


def reference_curve(model, init_state, batch, cfg, compute_loss, scheduler_dict, epochs) -> list[dict]:
    """``epochs`` epochs of their training step as their ``custom_train`` loop runs it (the epoch
    set before the forward, which sets the temperature; clip 1.0; AdamW; eval of val and test in
    eval mode; the scheduler stepped after), from ``init_state``; ROC-AUC by scikit-learn."""
    model.load_state_dict(init_state)
    for layer in model.layers:
        layer.attention_layer.self_attn.T = 1.0
    cfg.optim.max_epoch = epochs if epochs > cfg.optim.max_epoch else cfg.optim.max_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.base_lr, weight_decay=cfg.optim.weight_decay)
    sched = scheduler_dict[cfg.optim.scheduler](opt, cfg.optim.num_warmup_epochs, cfg.optim.max_epoch)
    full = batch("train")
    y = full.y
    out = []
    for epoch in range(epochs):
        cfg.train.cur_epoch = epoch
        model.train()
        opt.zero_grad()
        pred, true = model(batch("train"))
        loss, _ = compute_loss(pred, true)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        opt.zero_grad()
        model.eval()
        with torch.no_grad():
            logits, _ = model(batch(None))
        sched.step()
        out.append({"epoch": epoch, "loss": float(loss), "lr": lr, "T": model.layers[0].attention_layer.self_attn.T,
                    **{s: _auc(logits, y, getattr(full, f"{s}_mask")) for s in ("train", "val", "test")}})
    return out


WIDE_CONFIGS = {"minesweeper": "configs/heterophilic/minesweeper/minesweeper_spexphormer.yaml",
                "tolokers": "configs/heterophilic/tolokers/tolokers_spexphormer.yaml"}


def reference_wide_side(args) -> None:
    """Their stage-2 network (``SpExphormerFullLayer`` with ``SpexphormerAttention``, BatchNorm) on
    one neighbour table given in their batch format: forward per block, loss, gradients, a step."""
    import argparse as ap

    sys.path.insert(0, args.ref_dir)
    import spexphormer  # noqa: F401
    from torch_geometric.data import Data
    from torch_geometric.graphgym.config import cfg, load_cfg, set_cfg
    from torch_geometric.graphgym.loss import compute_loss
    from torch_geometric.graphgym.register import network_dict

    torch.set_num_threads(1)
    work = Path(args.work)
    inp = torch.load(work / "wide_inputs.pt")
    set_cfg(cfg)
    load_cfg(cfg, ap.Namespace(cfg_file=str(Path(args.ref_dir) / WIDE_CONFIGS[args.dataset]),
                               opts=["wandb.use", "False", "accelerator", "cpu", "gpu_mem", "False",
                                     "gt.dropout", str(inp["dropout"]), "gt.n_heads", str(inp["heads"])]))
    cfg.share.dim_in, cfg.share.dim_out = inp["x"].size(1), inp["out_dim"]
    torch.manual_seed(args.seed)
    model = network_dict[cfg.model.type](cfg.share.dim_in, cfg.share.dim_out)
    init_state = {k: v.clone() for k, v in model.state_dict().items()}

    def batch():
        b = Data(x=inp["x"].clone(), y=inp["y"].clone())
        for layer, (ei, et) in enumerate(zip(inp["edge_index_layers"], inp["edge_type_layers"])):
            setattr(b, f"edge_index_layer_{layer}", ei.clone())
            setattr(b, f"edge_type_layer_{layer}", et.clone())
        b.num_layer_nodes = inp["num_layer_nodes"].clone()
        b.split = "train"
        return b

    acts = {}

    def grab(key, attr=True):
        def hook(_m, _i, out):
            acts[key] = (out.x if attr else out).detach().clone()
        return hook
    model.encoder.register_forward_hook(grab("encoder"))
    if model.pre_mp is not None:
        model.pre_mp.register_forward_hook(grab("encoder.pre"))
    for i, layer in enumerate(model.layers):
        layer.attention_layer.self_attn.register_forward_hook(grab(f"layer{i}.attn", attr=False))
        layer.attention_layer.register_forward_hook(grab(f"layer{i}.norm1", attr=False))
        layer.register_forward_hook(grab(f"layer{i}.out"))
    model.train()
    pred, true = model(batch())
    loss, _ = compute_loss(pred, true)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD).step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_acts = dict(acts)
    model.load_state_dict(init_state)
    model.eval()
    with torch.no_grad():
        eval_pred, _ = model(batch())
    torch.save({"init": init_state, "acts": train_acts, "pred": pred.detach(), "eval_pred": eval_pred,
                "loss": loss.detach(), "grads": grads, "grad_norm": gnorm, "after": after,
                "params": sum(p.numel() for p in model.parameters()),
                "cfg": {"layers_pre_mp": cfg.gnn.layers_pre_mp, "dropout": cfg.gt.dropout,
                        "dim_hidden": cfg.gt.dim_hidden, "n_heads": cfg.gt.n_heads,
                        "ks": list(cfg.train.edge_sample_num_neighbors), "bn_eps": cfg.bn.eps}},
               work / "wide_reference_out.pt")


def wide_weight_map(ref: dict, ours: torch.nn.Module) -> dict:
    """Our ``Spexphormer`` state_dict from their ``SpExphormer_Network`` (stage-2 config): separate
    Q/K/V/E1/E2 Linears per layer, the model-level type ``Embedding(3, D)``, BatchNorms."""
    sd = {k: v.clone() for k, v in ours.state_dict().items()}

    def put(dst, src):
        if dst not in sd:
            raise KeyError(f"our state_dict has no {dst}")
        sd[dst] = src.clone().reshape(sd[dst].shape).to(sd[dst].dtype)

    put("encoder.input.weight", ref["encoder.node_encoder.encoder.weight"])
    put("encoder.input.bias", ref["encoder.node_encoder.encoder.bias"])
    for j in range(len(ours.encoder.pre)):
        src = f"pre_mp.Layer_{j}"
        put(f"encoder.pre.{j}.lin.weight", ref[f"{src}.layer.model.weight"])
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            put(f"encoder.pre.{j}.norm.{k}", ref[f"{src}.post_layer.0.{k}"])
    emb = ref["encoder.edge_encoder.encoder.weight"]
    put("type_embedding.weight", emb)
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for i in range(len(ours.layers)):
        a, o = f"layers.{i}.attention_layer.self_attn", f"layers.{i}.attn"
        for k in "QKV":
            put(f"{o}.{k}.weight", ref[f"{a}.{k}.weight"])
        for k in ("E1.weight", "E2.weight", "E2.bias"):
            put(f"{o}.types.{k}", ref[f"{a}.{k}"])
        put(f"{o}.types.embedding.weight", emb)
        for k in bn:
            put(f"layers.{i}.norm1.{k}", ref[f"layers.{i}.attention_layer.norm1_attn.{k}"])
            put(f"layers.{i}.norm2.{k}", ref[f"layers.{i}.norm2.{k}"])
        for ours_k, ref_k in (("lin1", "ff_linear1"), ("lin2", "ff_linear2")):
            for k in ("weight", "bias"):
                put(f"layers.{i}.ffn.{ours_k}.{k}", ref[f"layers.{i}.{ref_k}.{k}"])
    put("head.weight", ref["post_mp.layer_post_mp.model.0.model.weight"])
    put("head.bias", ref["post_mp.layer_post_mp.model.0.model.bias"])
    return sd


def wide_ref_name(ours_key: str) -> str | None:
    m = {"encoder.input.": "encoder.node_encoder.encoder.", "head.": "post_mp.layer_post_mp.model.0.model.",
         "type_embedding.": "encoder.edge_encoder.encoder."}
    for a, b in m.items():
        if ours_key.startswith(a):
            return b + ours_key[len(a):]
    p = ours_key.split(".")
    if p[0] == "encoder" and p[1] == "pre":
        return f"pre_mp.Layer_{p[2]}.layer.model.{p[4]}" if p[3] == "lin" else f"pre_mp.Layer_{p[2]}.post_layer.0.{p[4]}"
    if p[0] == "layers":
        i, mod = p[1], p[2]
        if mod == "attn":
            rest = p[4:] if p[3] == "types" else p[3:]
            return f"layers.{i}.attention_layer.self_attn.{'.'.join(rest)}"
        if mod == "norm1":
            return f"layers.{i}.attention_layer.norm1_attn.{p[3]}"
        if mod == "norm2":
            return f"layers.{i}.norm2.{p[3]}"
        if mod == "ffn":
            return f"layers.{i}.{ {'lin1': 'ff_linear1', 'lin2': 'ff_linear2'}[p[3]]}.{p[4]}"
    return None


def neighbour_batch(graph, core: torch.Tensor, ks, seed: int):
    """One neighbour table over the augmented graph, in both formats: ours (per layer an
    ``[n_{l+1}, k_l]`` index into the rows of S_l, and its edge types) and theirs
    (``edge_index_layer_l`` = [source row in S_l, destination row in S_{l+1}], destinations in
    blocks of k_l, ``edge_type_layer_l``, ``num_layer_nodes`` = [n_0, ..., n_{L-1}, n_core]).
    Sampling here is plain uniform without replacement (the diff needs one valid table, not the
    scores' distribution); S_l is S_{l+1} followed by its new sources, in first-seen order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ptr, src, typ = graph.ptr.numpy(), graph.edge_index[0].long().numpy(), graph.edge_type.long().numpy()
    L = len(ks)
    nodes = [None] * (L + 1)
    nodes[L] = core.numpy()
    index, types = [None] * L, [None] * L
    for layer in reversed(range(L)):
        dst_nodes, k = nodes[layer + 1], ks[layer]
        picks = np.stack([ptr[v] + rng.choice(ptr[v + 1] - ptr[v], size=k, replace=ptr[v + 1] - ptr[v] < k)
                          for v in dst_nodes])  # [n_{l+1}, k] edge positions
        sources = src[picks]
        order = np.concatenate([dst_nodes, sources.reshape(-1)])
        _, first = np.unique(order, return_index=True)
        S = order[np.sort(first)]
        pos = np.full(graph.num_nodes, -1, dtype=np.int64)
        pos[S] = np.arange(S.size)
        assert (pos[dst_nodes] == np.arange(dst_nodes.size)).all()  # S_{l+1} is a prefix of S_l
        nodes[layer], index[layer], types[layer] = S, torch.from_numpy(pos[sources]), torch.from_numpy(typ[picks])
    ours = {"nodes0": torch.from_numpy(nodes[0]), "index": index, "edge_type": types}
    theirs = {"edge_index_layers": [torch.stack([ix.reshape(-1), torch.arange(ix.size(0)).repeat_interleave(ix.size(1))])
                                    for ix in index],
              "edge_type_layers": [t.reshape(-1) for t in types],
              "num_layer_nodes": torch.tensor([n.size for n in nodes[:L]] + [core.numel()], dtype=torch.int32)}
    return ours, theirs


def reshaped_attention(attn, x_src, index, edge_type, return_attention=False, mask=None):
    """Our ``NeighbourAttention``'s parameters with the logits paired as the authors' wide layer
    pairs them: the gated keys ``(n, k, H, d_h)`` viewed as ``(n*H, k, d_h)`` before the product
    with the queries ``(n*H, d_h, 1)``, so that for H > 1 the logit of (head h, slot m) takes the
    key of neighbour j and head h' with ``j*H + h' = h*k + m``, while its E2 bias and its value
    stay those of (h, m). Derived from the math of their layer for this test; not used in training."""
    n, k = index.shape
    H, dh = attn.heads, attn.head_dim
    gate, type_bias = attn.types()  # [T, D], [T, H]
    q = attn.Q(x_src[:n]).view(n, H, dh) * attn.logit_scale
    keys = attn.K(x_src).view(-1, H, dh)[index]  # [n, k, H, dh]
    vals = attn.V(x_src).view(-1, H, dh)[index]  # [n, k, H, dh]
    gated = (gate[edge_type].view(n, k, H, dh) * keys).reshape(n * H, k, dh)  # the (n, k, H) -> (nH, k) view
    logits = torch.bmm(gated, q.reshape(n * H, dh, 1)).view(n, H, k)
    logits = logits + type_bias[edge_type].permute(0, 2, 1)  # [n, H, k]
    alpha = torch.softmax(logits.clamp(-attn.clamp, attn.clamp), dim=-1)
    out = (alpha.unsqueeze(-1) * vals.permute(0, 2, 1, 3)).sum(2).reshape(n, H * dh)
    return (out, alpha.transpose(1, 2)) if return_attention else out


def compare_wide(args, data, graph, info, cfg, table) -> dict:
    """The wide model: ours against theirs on one identical neighbour table (dropout 0 on both)."""
    from spexphormer.nn import Spexphormer
    from spexphormer.pipeline.stage2 import wide_args
    from spexphormer.train import task_loss

    work = Path(args.work)
    core = data.train_mask.nonzero().view(-1)
    ours_b, theirs_b = neighbour_batch(graph, core, cfg.stage2.ks, args.seed)
    x0 = data.x.float()[ours_b["nodes0"]]
    wargs = dict(wide_args(data, cfg), dropout=0.0)
    if args.wide_heads:
        wargs["heads"] = args.wide_heads
    torch.save({"x": x0, "y": data.y[core], "out_dim": wargs["out_dim"], "dropout": 0.0, "heads": wargs["heads"],
                **theirs_b},
               work / "wide_inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [args.python, str(Path(__file__).resolve()), "--side", "reference-wide", "--ref-dir", args.ref_dir,
           "--work", str(work), "--dataset", args.dataset, "--seed", str(args.seed)]
    proc = subprocess.run(cmd, env=env, cwd=str(work), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the reference side (wide) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    ref = torch.load(work / "wide_reference_out.pt", weights_only=False)
    model = Spexphormer(**wargs)
    sd = wide_weight_map(ref["init"], model)
    model.load_state_dict(sd)
    acts = {}

    def grab(key):
        def hook(_m, _i, out):
            acts[key] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        return hook
    handles = [model.encoder.register_forward_hook(grab("encoder.pre" if len(model.encoder.pre) else "encoder"))]
    if len(model.encoder.pre):
        handles.append(model.encoder.input.register_forward_hook(grab("encoder")))
    for i, layer in enumerate(model.layers):
        handles += [layer.attn.register_forward_hook(grab(f"layer{i}.attn")),
                    layer.norm1.register_forward_hook(grab(f"layer{i}.norm1")),
                    layer.register_forward_hook(grab(f"layer{i}.out"))]
    model.train()
    logits = model(x0, ours_b["index"], ours_b["edge_type"])
    acts = dict(acts)  # the eval-mode pass below must not overwrite the training-mode activations
    for h in handles:
        h.remove()
    loss = task_loss(logits, data.y[core], info.task)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD).step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    model.eval()
    with torch.no_grad():
        eval_logits = model(x0, ours_b["index"], ours_b["edge_type"])
    # ours with their pairing of logits, heads and neighbours: does that explain the whole difference?
    import types as _types
    emu = Spexphormer(**wargs)
    emu.load_state_dict(sd)
    for layer in emu.layers:
        layer.attn.forward = _types.MethodType(reshaped_attention, layer.attn)
    emu.train()
    emu_logits = emu(x0, ours_b["index"], ours_b["edge_type"])
    emu_loss = task_loss(emu_logits, data.y[core], info.task)
    emu_loss.backward()
    emu_grads = {k: diff(p.grad, ref["grads"][wide_ref_name(k)]) for k, p in emu.named_parameters()
                 if p.grad is not None and wide_ref_name(k) in ref["grads"]}
    emulated = {"logits": diff(emu_logits, ref["pred"]), "loss": diff(emu_loss.detach(), ref["loss"]),
                "max_rel_grad": max(d["max_rel"] for d in emu_grads.values()),
                "max_abs_grad": max(d["max_abs"] for d in emu_grads.values()), "grads": emu_grads}
    out = {"forward": {k: diff(v, ref["acts"][k]) for k, v in acts.items() if k in ref["acts"]},
           "with_their_reshape": emulated,
           "logits": diff(logits, ref["pred"]), "eval_logits": diff(eval_logits, ref["eval_pred"]),
           "loss": diff(loss.detach(), ref["loss"]),
           "grad_norm": {"ours": float(gnorm), "theirs": float(ref["grad_norm"])},
           "grads": {}, "after_step": {}, "params": {"ours": sum(p.numel() for p in model.parameters()),
                                                     "theirs": ref["params"]},
           "batch": {"core": int(core.numel()), "num_layer_nodes": theirs_b["num_layer_nodes"].tolist(),
                     "ks": list(cfg.stage2.ks)}, "reference_cfg": ref["cfg"], "dropout": 0.0,
           "heads": wargs["heads"]}
    for k, g in grads.items():
        if k.endswith("types.embedding.weight"):
            continue
        name = wide_ref_name(k)
        if name in ref["grads"]:
            out["grads"][k] = diff(g, ref["grads"][name])
    after_ref = wide_weight_map(ref["after"], model)
    for k, v in after.items():
        if not k.endswith("num_batches_tracked"):
            out["after_step"][k] = diff(v, after_ref[k])
    rows = [{"what": f"forward: {k}", "abs": _g(d, "max_abs"), "rel": _g(d, "max_rel")} for k, d in out["forward"].items()]
    rows += [{"what": k, "abs": _g(out[k], "max_abs"), "rel": _g(out[k], "max_rel")}
             for k in ("logits", "eval_logits", "loss")]
    rows += [{"what": f"grad: {k}", "abs": _g(d, "max_abs"), "rel": _g(d, "max_rel")} for k, d in out["grads"].items()]
    rows += [{"what": f"after step: {k}", "abs": _g(d, "max_abs"), "rel": _g(d, "max_rel")}
             for k, d in out["after_step"].items()]
    print(table(rows, f"wide model, ours minus theirs, {args.dataset}: one neighbour table "
                      f"(nodes per layer {out['batch']['num_layer_nodes']}, ks {out['batch']['ks']}), "
                      f"{wargs['heads']} heads, dropout 0"))
    e = out["with_their_reshape"]
    print(f"ours with their (n,k,H,d)->(nH,k,d) pairing: logits max abs {e['logits']['max_abs']:.2e} "
          f"(rel {e['logits']['max_rel']:.2e}), loss {e['loss']['max_abs']:.2e}, gradients max abs "
          f"{e['max_abs_grad']:.2e} (max rel {e['max_rel_grad']:.2e})")
    print(f"grad norm: ours {out['grad_norm']['ours']:.6g}, theirs {out['grad_norm']['theirs']:.6g}; "
          f"parameters: ours {out['params']['ours']}, theirs {out['params']['theirs']}")
    return out


# --------------------------------------------------------------------------------------------
# the weight map: their state_dict -> ours
# --------------------------------------------------------------------------------------------

def weight_map(ref: dict, ours: torch.nn.Module, heads: int) -> tuple[dict, list[str]]:
    """Our state_dict filled from theirs, and notes on what has no one-to-one counterpart.

    Their QKV is one Linear whose output is viewed as [H, 3 * d_h] and split Q|K|V inside each head;
    their pre-layer Linear has no bias (GraphGym drops it before a BatchNorm): ours gets 0. The
    per-type terms: their model-level ``Embedding(3, d)`` (``encoder.edge_encoder.encoder``) through
    each layer's ``E1: d -> D`` (no bias) and ``E2: d -> H``; our current layout holds the effective
    per-type scale ``sum_c E1(e_t)_{h,c}`` and shift ``E2(e_t)_h`` directly, our new layout (if
    present) takes the table and the maps as they are.
    """
    sd = {k: v.clone() for k, v in ours.state_dict().items()}
    notes = []

    def put(dst, src_tensor):
        if dst not in sd:
            raise KeyError(f"our state_dict has no {dst}")
        if sd[dst].shape != src_tensor.shape:
            src_tensor = src_tensor.reshape(sd[dst].shape)
        sd[dst] = src_tensor.clone().to(sd[dst].dtype)

    put("encoder.input.weight", ref["encoder.node_encoder.encoder.weight"])
    put("encoder.input.bias", ref["encoder.node_encoder.encoder.bias"])
    for j in range(len(ours.encoder.pre)):
        src = f"pre_mp.Layer_{j}"
        put(f"encoder.pre.{j}.lin.weight", ref[f"{src}.layer.model.weight"])
        if f"encoder.pre.{j}.lin.bias" in sd:
            if f"{src}.layer.model.bias" in ref:
                put(f"encoder.pre.{j}.lin.bias", ref[f"{src}.layer.model.bias"])
            else:
                sd[f"encoder.pre.{j}.lin.bias"].zero_()
                notes.append(f"encoder.pre.{j}.lin.bias: ours has a bias before the BatchNorm, theirs none (set 0)")
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            put(f"encoder.pre.{j}.norm.{k}", ref[f"{src}.post_layer.0.{k}"])
    emb = ref["encoder.edge_encoder.encoder.weight"]  # [3, d]
    layout = _type_layout(sd)
    for i, layer in enumerate(ours.layers):
        a, o = f"layers.{i}.attention_layer.self_attn", f"layers.{i}.attn"
        w = ref[f"{a}.QKV.weight"]  # [H * 3 * dh, d]
        dh = w.size(0) // (3 * heads)
        w = w.view(heads, 3, dh, -1)
        for j, key in enumerate("QKV"):
            put(f"{o}.{key}.weight", w[:, j].reshape(heads * dh, -1))
        put(f"{o}.value_scale", ref[f"{a}.V_scale"].reshape(()))
        if layout == "embedding":  # the authors' form: the same table and maps
            for k in ("E1.weight", "E2.weight", "E2.bias"):
                put(f"{o}.types.{k}", ref[f"{a}.{k}"])
            put(f"{o}.types.embedding.weight", emb)  # the shared table, as each layer's state_dict lists it
        else:  # a directly learned per-type scale and shift: the effective values of theirs
            e1 = emb @ ref[f"{a}.E1.weight"].t()  # [3, H * dh]
            e2 = emb @ ref[f"{a}.E2.weight"].t() + ref[f"{a}.E2.bias"]  # [3, H]
            scale_key, bias_key = (f"{o}.types.gate", f"{o}.types.bias") if layout == "table" else \
                (f"{o}.type_scale", f"{o}.type_bias")
            put(scale_key, e1.view(-1, heads, dh).sum(-1))
            put(bias_key, e2)
        n1 = f"layers.{i}.attention_layer.norm1_attn"
        for k in ("weight", "bias", "mean_scale"):
            put(f"layers.{i}.norm1.{k}", ref[f"{n1}.{k}"])
            put(f"layers.{i}.norm2.{k}", ref[f"layers.{i}.norm2.{k}"])
        for ours_k, ref_k in (("lin1", "ff_linear1"), ("lin2", "ff_linear2")):
            for k in ("weight", "bias"):
                put(f"layers.{i}.ffn.{ours_k}.{k}", ref[f"layers.{i}.{ref_k}.{k}"])
    if layout == "embedding":
        put("type_embedding.weight", emb)
    else:
        notes.append("per-type terms: theirs Embedding(3,d) -> E1/E2 per layer; ours the effective scale/shift "
                     "(same forward, different parametrization: gradients and steps differ)")
    put("head.weight", ref["post_mp.layer_post_mp.model.0.model.weight"])
    put("head.bias", ref["post_mp.layer_post_mp.model.0.model.bias"])
    unused = [k for k in ref if not any(s in k for s in ("encoder.", "pre_mp.", "layers.", "post_mp."))]
    if unused:
        notes.append(f"reference keys not mapped: {unused}")
    return sd, notes


def _type_layout(sd: dict) -> str:
    """Which per-type layout our model has: "embedding" (the authors'), "table" (a learned scale
    and shift per type in ``types.gate``/``types.bias``), or "scalars" (before nn/type_terms.py)."""
    if any(k.endswith("attn.types.E1.weight") for k in sd):
        return "embedding"
    if any(k.endswith("attn.types.gate") for k in sd):
        return "table"
    return "scalars"


def ref_name(ours_key: str, heads: int) -> list[str]:
    """The reference parameter(s) our parameter ``ours_key`` came from (for the gradient table)."""
    m = {"encoder.input.": "encoder.node_encoder.encoder.", "head.": "post_mp.layer_post_mp.model.0.model.",
         "type_embedding.": "encoder.edge_encoder.encoder."}
    for a, b in m.items():
        if ours_key.startswith(a):
            return [b + ours_key[len(a):]]
    p = ours_key.split(".")
    if p[0] == "encoder" and p[1] == "pre":
        j, mod, k = p[2], p[3], p[4]
        return [f"pre_mp.Layer_{j}.layer.model.{k}"] if mod == "lin" else [f"pre_mp.Layer_{j}.post_layer.0.{k}"]
    if p[0] == "layers":
        i, mod = p[1], p[2]
        if mod == "attn":
            rest = p[4:] if p[3] == "types" else p[3:]
            return [f"layers.{i}.attention_layer.self_attn.{'.'.join(rest)}"]
        if mod == "norm1":
            return [f"layers.{i}.attention_layer.norm1_attn.{p[3]}"]
        if mod == "norm2":
            return [f"layers.{i}.norm2.{p[3]}"]
        if mod == "ffn":
            return [f"layers.{i}.{ {'lin1': 'ff_linear1', 'lin2': 'ff_linear2'}[p[3]]}.{p[4]}"]
    return []


# --------------------------------------------------------------------------------------------
# our side and the comparison
# --------------------------------------------------------------------------------------------

def diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    if a.numel() != b.numel():
        return {"max_abs": None, "max_rel": None, "note": f"shapes {a.numel()} vs {b.numel()}"}
    d = (a - b).abs().detach()
    a, b = a.detach(), b.detach()
    i = int(d.argmax()) if d.numel() else 0
    scale = b.abs().max().item() if b.numel() else 0.0
    d = d.detach()
    return {"max_abs": float(d.max()) if d.numel() else 0.0,
            "max_rel": float(d.max() / scale) if scale > 0 else (0.0 if float(d.max()) == 0 else float("inf")),
            "at": i, "ours": float(a[i]) if a.numel() else None, "theirs": float(b[i]) if b.numel() else None,
            "ref_max_abs": scale}


def ours_pass(model, sd, inp, graph, fused: bool, temp_cfg: dict, task: str):
    from spexphormer.nn.csr_attention import CSRGraph
    from spexphormer.train import task_loss

    model.load_state_dict(sd)
    csr = CSRGraph.from_graph(graph) if fused else None
    acts, hs = {}, []

    def grab(key, first=False):
        def hook(_m, _i, out):
            acts[key] = (out[0] if first and isinstance(out, tuple) else out).detach().clone()
        return hook
    hs += [model.encoder.input.register_forward_hook(grab("encoder.input")),
           model.encoder.register_forward_hook(grab("encoder.pre")), model.head.register_forward_hook(grab("logits"))]
    for i, layer in enumerate(model.layers):
        hs += [layer.attn.register_forward_hook(grab(f"layer{i}.attn", first=True)),
               layer.norm1.register_forward_hook(grab(f"layer{i}.norm1")),
               layer.register_forward_hook(grab(f"layer{i}.out", first=True))]
    x, ei, et = inp["x"], inp["edge_index"], inp["edge_type"]
    model.train()
    model.zero_grad(set_to_none=True)
    logits = model(x, ei, et, temperature=1.0, csr=csr)
    m = inp["train_mask"]
    loss = task_loss(logits[m], inp["y"][m], task)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD).step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for h in hs:
        h.remove()
    exported = {}
    for tag, epoch in (("T1", 0), ("annealed", ANNEALED_EPOCH)):
        from spexphormer.train import temperature
        T = temperature(epoch, temp_cfg["temp_rdc_ratio"], temp_cfg["temp_wait"], temp_cfg["temp_min"])
        model.load_state_dict(sd)
        model.eval()
        with torch.no_grad():
            _, scores = model(x, ei, et, temperature=T, return_scores=True, csr=csr)
        exported[tag] = {"T": T, "scores": scores}
    return {"acts": acts, "loss": loss.detach(), "grads": grads, "grad_norm": gnorm, "after": after,
            "exported": exported}


def ours_curve(model, sd, inp, graph, cfg, task, epochs) -> list[dict]:
    """``epochs`` epochs of our estimator's training (``spexphormer.train.fit``, as
    ``pipeline.stage1.estimate`` calls it: fused CSR kernels, the stage-1 config's schedule,
    temperature and clip) from the same initial weights; ROC-AUC by scikit-learn."""
    from spexphormer.nn.csr_attention import CSRGraph
    from spexphormer.train import fit, task_loss, temperature

    s1 = cfg.stage1
    model.load_state_dict(sd)
    csr = CSRGraph.from_graph(graph)
    x, y, ei, et = inp["x"], inp["y"], inp["edge_index"], inp["edge_type"]
    m = {s: inp[f"{s}_mask"] for s in ("train", "val", "test")}
    temp = lambda e: temperature(e, s1.temp_ratio, s1.temp_wait, s1.temp_min)  # noqa: E731
    losses = []

    def train_epoch(epoch, optimize):
        logits = model(x, ei, et, temperature=temp(epoch), csr=csr)
        loss = task_loss(logits[m["train"]], y[m["train"]], task)
        optimize(loss)
        losses.append(loss.item())
        return loss.item()

    def evaluate(epoch):
        logits = model(x, ei, et, temperature=temp(epoch), csr=csr)
        return {s: _auc(logits, y, mask) for s, mask in m.items()}

    extra = {"warmup_rule": s1.warmup_rule} if hasattr(s1, "warmup_rule") else {}
    res = fit(model, train_epoch, evaluate, epochs, s1.lr, s1.weight_decay, s1.warmup_epochs, s1.clip,
              progress=False, **extra)
    return [{"epoch": r["epoch"], "loss": losses[i], "lr": r["lr"], "T": temp(r["epoch"]),
             **{s: r[s] for s in ("train", "val", "test")}} for i, r in enumerate(res.history)]


def curve_summary(curve: list[dict]) -> dict:
    vals = [r["val"] for r in curve]
    rounded = [round(v, 5) for v in vals]  # their logger rounds to cfg.round = 5 digits before the argmax
    b, br = vals.index(max(vals)), rounded.index(max(rounded))
    return {"best_epoch": b, "val": 100 * vals[b], "test": 100 * curve[b]["test"],
            "best_epoch_rounded": br, "test_rounded": 100 * curve[br]["test"], "last_val": 100 * vals[-1],
            "last_test": 100 * curve[-1]["test"]}


def compare(args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import RESULTS, machine, save_json, table
    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.stage1 import augment_graph
    from spexphormer.presets import preset

    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = load_graph(dataset=args.dataset, root=args.data_root)
    cfg = preset(args.dataset, "spexphormer").override(list(args.set))
    info = graph_info(data)
    graph = augment_graph(data, cfg)
    result = {"benchmark": "reference_diff", "dataset": args.dataset, "seed": args.seed, "overrides": list(args.set),
              "reference": {"repo": "hamed1375/Sp_Exphormer", "commit": "1436adf",
                            "config": CONFIGS[args.dataset][0], "wide_config": WIDE_CONFIGS[args.dataset]},
              "step": {"lr": LR, "weight_decay": WD, "clip": CLIP}}
    if args.model != "wide":
        result.update(compare_estimator(args, data, graph, info, cfg, work, table))
    if args.model != "estimator":
        result["wide"] = compare_wide(args, data, graph, info, cfg, table)
    result["machine"] = machine()
    path = Path(args.out) if args.out else RESULTS / "reference_diff.json"
    save_json(result, path)
    print(f"wrote {path}")
    return result


def compare_estimator(args, data, graph, info, cfg, work, table) -> dict:
    from spexphormer.nn import AttentionScoreEstimator
    from spexphormer.pipeline.stage1 import estimator_args
    from spexphormer.train import output_dim
    from spexphormer.train.schedule import cosine_with_warmup

    inp = {"x": data.x.float(), "y": data.y, "edge_index": graph.edge_index.long(),
           "edge_type": graph.edge_type.long(), "out_dim": output_dim(info.task, info.num_classes),
           **{f"{s}_mask": getattr(data, f"{s}_mask") for s in ("train", "val", "test")}}
    torch.save(inp, work / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [args.python, str(Path(__file__).resolve()), "--side", "reference", "--ref-dir", args.ref_dir,
           "--work", str(work), "--dataset", args.dataset, "--seed", str(args.seed), "--epochs", str(args.epochs)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, cwd=str(work), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the reference side failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    ref = torch.load(work / "reference_out.pt", weights_only=False)
    s1 = cfg.stage1
    model = AttentionScoreEstimator(**estimator_args(data, cfg))
    heads = s1.heads
    sd, notes = weight_map(ref["init"], model, heads)
    runs = {"edge_list": ours_pass(model, sd, inp, graph, False, ref["cfg"], info.task),
            "fused_csr": ours_pass(model, sd, inp, graph, True, ref["cfg"], info.task)}

    rows, out = [], {"forward": {}, "loss": {}, "scores": {}, "grads": {}, "grad_norm": {}, "after_step": {}}
    L = len(model.layers)
    for kind, r in runs.items():
        for key, a in r["acts"].items():
            out["forward"].setdefault(key, {})[kind] = diff(a, ref["acts"][key])
        out["loss"][kind] = diff(r["loss"], ref["loss"])
        for tag in ("T1", "annealed"):
            for i in range(L):
                d = diff(r["exported"][tag]["scores"][i], ref["exported"][tag]["scores"][i].mean(-1))
                d["T_ours"], d["T_theirs"] = r["exported"][tag]["T"], ref["exported"][tag]["T"]
                out["scores"].setdefault(f"{tag}.layer{i}", {})[kind] = d
        out["grad_norm"][kind] = {"ours": float(r["grad_norm"]), "theirs": float(ref["grad_norm"])}
        for k, g in r["grads"].items():
            names = ref_name(k, heads)
            if k.endswith(("type_scale", "type_bias", "types.gate", "types.bias")):
                i, is_scale = int(k.split(".")[1]), k.endswith(("type_scale", "types.gate"))
                src = ref["type_grads"][f"layer{i}.E1" if is_scale else f"layer{i}.E2"]
                if is_scale:  # d loss / d scale_t = d loss / d E1(e_t)_{h,c} for every c
                    src = src.view(src.size(0), heads, -1)[..., 0]
                out["grads"].setdefault(k + " (vs their d/dE-output)", {})[kind] = diff(g, src)
                continue
            if k.startswith("encoder.pre") and k.endswith("lin.bias") and not any(n in ref["grads"] for n in names):
                out["grads"].setdefault(k + " (no counterpart)", {})[kind] = {"max_abs": float(g.abs().max()),
                                                                             "max_rel": None}
                continue
            if k.endswith("types.embedding.weight"):
                continue  # the shared table: compared once, as type_embedding.weight
            if k.endswith("attn.Q.weight") or k.endswith("attn.K.weight") or k.endswith("attn.V.weight"):
                i, j = int(k.split(".")[1]), "QKV".index(k.split(".")[3])
                w = ref["grads"][f"layers.{i}.attention_layer.self_attn.QKV.weight"]
                src = w.view(heads, 3, -1, w.size(1))[:, j].reshape(g.shape)
            elif k.endswith("value_scale"):
                src = ref["grads"][f"layers.{k.split('.')[1]}.attention_layer.self_attn.V_scale"]
            else:
                src = ref["grads"].get(names[0]) if names else None
            if src is None:
                continue
            out["grads"].setdefault(k, {})[kind] = diff(g, src)
        after_ref, _ = weight_map(ref["after"], model, heads)
        for k, v in r["after"].items():
            if k.endswith("num_batches_tracked"):
                continue
            out["after_step"].setdefault(k, {})[kind] = diff(v, after_ref[k])

    # schedules
    dummy = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=s1.lr)
    rule = [s1.warmup_rule] if hasattr(s1, "warmup_rule") else []
    sched = cosine_with_warmup(dummy, s1.warmup_epochs, s1.epochs, *rule)
    ours_lrs = []
    for _ in range(s1.epochs):
        ours_lrs.append(dummy.param_groups[0]["lr"])
        dummy.step()
        sched.step()
    out["lr"] = {"ours": ours_lrs, "theirs": ref["lrs"],
                 "max_abs": max(abs(a - b) for a, b in zip(ours_lrs, ref["lrs"]))}

    if args.epochs:
        oc = ours_curve(model, sd, inp, graph, cfg, info.task, args.epochs)
        rc = ref["curve"]
        out["curve"] = {"ours": oc, "theirs": rc, "ours_summary": curve_summary(oc),
                        "theirs_summary": curve_summary(rc)}

    # table
    def row(group, key, d):
        return {"what": f"{group}: {key}", "edge list abs": _g(d.get("edge_list"), "max_abs"),
                "edge list rel": _g(d.get("edge_list"), "max_rel"), "fused abs": _g(d.get("fused_csr"), "max_abs"),
                "fused rel": _g(d.get("fused_csr"), "max_rel")}
    for group in ("forward", "scores", "loss"):
        if group == "loss":
            rows.append(row("loss", "BCE", out["loss"]))
            continue
        for key, d in out[group].items():
            rows.append(row(group, key, d))
    for key, d in out["grads"].items():
        rows.append(row("grad", key, d))
    for key, d in out["after_step"].items():
        rows.append(row("after step", key, d))
    print(table(rows, f"ours minus theirs, {args.dataset}, same weights and edges "
                      f"(N={data.num_nodes}, E={inp['edge_index'].size(1)})"))
    print(f"clipped grad norm (pre-clip total): ours edge list {out['grad_norm']['edge_list']['ours']:.6g}, "
          f"fused {out['grad_norm']['fused_csr']['ours']:.6g}, theirs {out['grad_norm']['edge_list']['theirs']:.6g}")
    print(f"parameters: ours {sum(p.numel() for p in model.parameters())}, theirs {ref['params']}")
    print("learning rate per epoch (first 10):")
    print(table([{"epoch": e, "ours": f"{a:.3e}", "theirs": f"{b:.3e}", "ratio": f"{a / b:.3g}" if b else "inf"}
                 for e, (a, b) in enumerate(zip(ours_lrs[:10], ref["lrs"][:10]))]))
    for n in notes:
        print("note:", n)
    if args.epochs:
        oc, rc = out["curve"]["ours"], out["curve"]["theirs"]
        step = max(1, args.epochs // 20)
        print(table([{"epoch": a["epoch"], "lr ours": f"{a['lr']:.2e}", "lr theirs": f"{b['lr']:.2e}",
                      "T ours": f"{a['T']:.4f}", "T theirs": f"{b['T']:.4f}",
                      "loss ours": f"{a['loss']:.5f}", "loss theirs": f"{b['loss']:.5f}",
                      "val ours": f"{100 * a['val']:.2f}", "val theirs": f"{100 * b['val']:.2f}",
                      "test ours": f"{100 * a['test']:.2f}", "test theirs": f"{100 * b['test']:.2f}"}
                     for a, b in [pair for e, pair in enumerate(zip(oc, rc)) if e % step == 0 or e == len(oc) - 1]],
                    f"training curves from the same initial weights ({args.epochs} epochs, ROC-AUC %)"))
        print("best-val epoch: ours", out["curve"]["ours_summary"], "\n                theirs",
              out["curve"]["theirs_summary"])
    return {"type_layout": _type_layout(sd), "nodes": data.num_nodes, "edges": int(inp["edge_index"].size(1)),
            "notes": notes, "reference_cfg": ref["cfg"],
            "params": {"ours": sum(p.numel() for p in model.parameters()), "theirs": ref["params"]},
            **out, "reference_seconds": round(time.time() - t0, 1)}


def _g(d, k):
    if not d or d.get(k) is None:
        return "-"
    return f"{d[k]:.2e}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-dir", required=True, help="the authors' code (Sp_Exphormer at 1436adf)")
    p.add_argument("--python", default=None, help="the interpreter of the authors' virtualenv")
    p.add_argument("--dataset", default="minesweeper", help="minesweeper (default) or tolokers")
    p.add_argument("--seed", type=int, default=0, help="seed of the reference model's initial weights")
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    p.add_argument("--work", default="/tmp/reference_diff", help="scratch folder for the exchanged files")
    p.add_argument("--out", default=None, help="JSON path (default results/reference_diff.json)")
    p.add_argument("--epochs", type=int, default=0,
                   help="also train both from the same weights for this many epochs and compare the curves")
    p.add_argument("--wide-heads", type=int, default=0,
                   help="heads of both wide models (default: the preset's, 4); 1 takes their head/neighbour "
                        "reshape out of the comparison")
    p.add_argument("--set", action="append", default=[],
                   help="override of our config, repeatable (e.g. stage1.type_terms=table)")
    p.add_argument("--model", default="both", choices=("estimator", "wide", "both"),
                   help="which stage's network to compare (default both)")
    p.add_argument("--side", default="compare", choices=("compare", "reference", "reference-wide"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dataset not in CONFIGS:
        print(f"error: unknown dataset {args.dataset!r} (choose from {', '.join(CONFIGS)})", file=sys.stderr)
        return 2
    if not (Path(args.ref_dir) / "main.py").is_file():
        print(f"error: --ref-dir {args.ref_dir}: no main.py there (expected the authors' checkout)", file=sys.stderr)
        return 2
    if args.side == "reference":
        reference_side(args)
        return 0
    if args.side == "reference-wide":
        reference_wide_side(args)
        return 0
    if not args.python or not os.access(args.python, os.X_OK):
        print(f"error: --python {args.python}: not an executable", file=sys.stderr)
        return 2
    try:
        compare(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
