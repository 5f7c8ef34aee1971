r"""Do narrow and wide estimators attend alike? (``spexphormer analyze consistency``)

Spexphormer's premise (docs/method.md §1) is that the attention scores :math:`\alpha^{(\ell)}` of a narrow
Attention Score Estimator are close to those of a wide one trained on the same augmented graph,
so the narrow network can choose the edges of the wide one. This module checks that on a user's
graph: it trains one estimator per width :math:`d \in \{d_1, \dots, d_m\}` (same graph, same
expander, same seed, one head) and compares, per layer :math:`\ell`, the scores of every width
with those of the widest one :math:`d_{\max}`:

.. math::
    \bar D^{(\ell)}_d = \frac{1}{N} \sum_v \big\lVert \alpha^{(\ell)}_{d, v} -
        \alpha^{(\ell)}_{d_{\max}, v} \big\rVert_2^2, \qquad
    \bar A^{(\ell)}_d = \frac{1}{N} \sum_v
        \frac{\lvert \operatorname{top}_k(\alpha^{(\ell)}_{d, v}) \cap
                     \operatorname{top}_k(\alpha^{(\ell)}_{d_{\max}, v}) \rvert}{\min(k, \deg^- v)},

(mean energy distance, see :func:`~spexphormer.analysis.measures.energy_distance`, and mean top-k
agreement), next to two no-information baselines compared with the same widest network: uniform
scores :math:`1/\deg^-(v)` and the softmax of random normal logits. Consistency holds when the
narrow widths sit well below the baselines in distance and well above them in agreement.

The comparison runs on the full augmented graph and, as a control, on the graph edges and
self-loops only (``exp_deg = 0``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Iterable

import torch
from torch_geometric.data import Data
from tqdm.auto import tqdm

from spexphormer.analysis.measures import energy_distance, random_logit_scores, topk_agreement, uniform_scores
from spexphormer.config import Config, replace_section
from spexphormer.data import graph_info
from spexphormer.errors import ConfigError
from spexphormer.pipeline.stage1 import augment_graph, estimate
from spexphormer.train.logs import bars_wanted
from spexphormer.utils.device import resolve_device
from spexphormer.utils.io import atomic_write, save_json
from spexphormer.utils.table import format_table

__all__ = ["run_consistency", "consistency_table", "compare_scores", "plot_consistency"]

SETTINGS = {True: "with_expander", False: "without_expander"}
BASELINES = ("uniform", "random")


def _check_widths(widths: Iterable[int]) -> list[int]:
    widths = list(widths)
    if len(widths) < 2:
        raise ConfigError(f"consistency needs at least 2 widths to compare, got {widths}")
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ConfigError(f"widths must be positive integers, got {w!r}")
    if len(set(widths)) != len(widths):
        raise ConfigError(f"widths must be distinct, got {widths}")
    return widths


def compare_scores(scores: torch.Tensor, reference: torch.Tensor, ptr: torch.Tensor, k: int) -> list[dict]:
    r"""Per-layer mean energy distance and mean top-k agreement of ``scores`` to ``reference``.

    Args:
        scores (Tensor): :math:`[L, E]` scores of one network (or a baseline).
        reference (Tensor): :math:`[L, E]` scores of the reference (widest) network.
        ptr (Tensor): CSR offsets :math:`[N + 1]` of the augmented graph.
        k (int): top-k size.

    Returns:
        list[dict]: one ``{"layer", "energy", "topk"}`` per layer (node means; nodes without
        in-edges are left out of the top-k mean).
    """
    rows = []
    for layer, (p, q) in enumerate(zip(scores, reference)):
        energy = energy_distance(p, q, ptr).double().mean().item()
        agree = topk_agreement(p, q, ptr, k).double().nanmean().item()
        rows.append({"layer": layer, "energy": energy, "topk": agree})
    return rows


def run_consistency(
    data: Data,
    cfg: Config,
    widths: list[int],
    out: str | os.PathLike,
    epochs: int | None = None,
    progress: bool = True,
    with_expander: Iterable[bool] = (True, False),
) -> dict:
    r"""Train one estimator per width and setting, compare every width with the widest.

    For each setting in ``with_expander`` the augmented graph is built once from ``cfg.graph``
    (``False`` means ``exp_deg = 0``: graph edges and self-loops only) and shared by all widths.
    Each estimator is ``cfg.stage1`` with ``hidden = width``, ``heads = 1``, the same seed and,
    when given, ``epochs``.

    Args:
        data (Data): the input graph (masks, ``task``, ``metric``).
        cfg (Config): graph, stage-1 settings; ``cfg.stage2.ks[0]`` is the top-k size :math:`k`.
        widths (list[int]): at least two distinct widths; the largest is the reference.
        out (path): folder for ``consistency.json`` and ``consistency.png``.
        epochs (int, optional): epochs per estimator. (default: the preset's ``stage1.epochs``)
        progress (bool, optional): show progress bars. (default: ``True``)
        with_expander (tuple[bool], optional): which settings to run. (default: ``(True, False)``)

    Returns:
        dict: what ``consistency.json`` holds: ``settings[name]["compare"][width or baseline]``
        is a list over layers of ``{"layer", "energy", "topk"}``, ``settings[name]["estimators"]
        [width]`` holds each estimator's val/test metric.
    """
    widths = _check_widths(widths)
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    flags = list(dict.fromkeys(bool(f) for f in with_expander))
    if not flags:
        raise ConfigError("with_expander must name at least one setting (True and/or False)")
    out = Path(out)
    ref = max(widths)
    k = int(cfg.stage2.ks[0])
    device = resolve_device(cfg.run.device)
    base = replace_section(cfg, "stage1", heads=1, **({"epochs": epochs} if epochs is not None else {}))
    s1, info = base.stage1, graph_info(data)
    results = {
        "analysis": "consistency",
        "dataset": info.name,
        "split": info.split,
        "metric": info.metric,
        "widths": widths,
        "reference_width": ref,
        "k": k,
        "epochs": s1.epochs,
        "num_layers": s1.num_layers,
        "config": {"graph": base.to_dict()["graph"], "stage1": base.to_dict()["stage1"]},
        "settings": {},
    }
    start = time.perf_counter()
    bar = tqdm(total=len(flags) * len(widths), desc="consistency", unit="net", disable=not bars_wanted(progress),
               dynamic_ncols=True)
    try:
        for flag in flags:
            name = SETTINGS[flag]
            gcfg = base if flag else replace_section(base, "graph", exp_deg=0)
            graph = augment_graph(data, gcfg)
            ptr, deg = graph.ptr, graph.in_degree()
            scores, estimators = {}, {}
            for w in widths:
                bar.set_postfix_str(f"{name.replace('_', ' ')}, width {w}")
                res = estimate(data, replace_section(gcfg, "stage1", hidden=w), device=device, graph=graph,
                               progress=progress)
                scores[w] = res.scores.scores.cpu()
                estimators[str(w)] = {"val": res.fit.val, "test": res.fit.test, "best_epoch": res.fit.best_epoch,
                                      "temperature": res.scores.temperature, "seconds": round(res.fit.seconds, 2)}
                bar.update()
            layers = scores[ref].size(0)
            candidates = {str(w): scores[w] for w in widths if w != ref}
            candidates["uniform"] = uniform_scores(ptr).expand(layers, -1)
            candidates["random"] = torch.stack([random_logit_scores(ptr, seed=s1.seed + layer)
                                                for layer in range(layers)])
            results["settings"][name] = {
                "exp_deg": gcfg.graph.exp_deg,
                "num_edges": graph.num_edges,
                "mean_in_degree": float(deg.double().mean()),
                "frac_nodes_deg_above_k": float((deg > k).double().mean()),
                "estimators": estimators,
                "compare": {key: compare_scores(s, scores[ref], ptr, k) for key, s in candidates.items()},
            }
    finally:
        bar.close()
    results["seconds"] = round(time.perf_counter() - start, 1)
    save_json(results, out / "consistency.json")
    plot_consistency(results, out / "consistency.png")
    return results


def _series(setting: dict) -> list[str]:
    return [key for key in setting["compare"] if key not in BASELINES] + list(BASELINES)


def plot_consistency(results: dict, path: str | os.PathLike) -> Path:
    """Grouped bar chart: one column per setting, energy distance (top) and top-k agreement (bottom)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    settings = results["settings"]
    ref, k = results["reference_width"], results["k"]
    fig = Figure(figsize=(6.2 * len(settings), 7.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(settings), squeeze=False)
    widths = [str(w) for w in results["widths"] if w != ref]
    cmap = matplotlib.colormaps["viridis"]
    palette = {w: cmap(0.15 + 0.7 * i / max(1, len(widths) - 1)) for i, w in enumerate(widths)}
    palette.update({"uniform": "0.55", "random": "0.25"})
    labels = {w: f"width {w}" for w in widths} | {"uniform": "uniform 1/deg", "random": "random logits"}
    for col, (name, setting) in enumerate(settings.items()):
        series = _series(setting)
        layers = len(setting["compare"][series[0]])
        step = 0.8 / len(series)
        for row, (measure, ylabel) in enumerate((
                ("energy", f"mean energy distance to width {ref}\n(log scale, lower = closer)"),
                ("topk", f"top-{k} agreement with width {ref}  (higher = closer)"))):
            ax = axes[row][col]
            for i, key in enumerate(series):
                xs = [layer + 1 - 0.4 + step * (i + 0.5) for layer in range(layers)]
                ys = [entry[measure] for entry in setting["compare"][key]]
                ax.bar(xs, ys, width=step, color=palette[key], label=labels[key],
                       hatch="//" if key in BASELINES else None, edgecolor="white", linewidth=0.5)
            ax.set_xticks(range(1, layers + 1))
            ax.set_xlabel("layer")
            ax.set_ylabel(ylabel, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if measure == "topk":
                ax.set_ylim(0, 1.05)
            elif any(e["energy"] > 0 for key in series for e in setting["compare"][key]):
                ax.set_yscale("log")  # the random baseline is often 10-100x the widths
            title = name.replace("_", " ") + f" (exp_deg={setting['exp_deg']}, mean in-degree " \
                f"{setting['mean_in_degree']:.1f}, {100 * setting['frac_nodes_deg_above_k']:.0f}% nodes deg>{k})"
            ax.set_title(title, fontsize=9)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(f"attention-score consistency on {results['dataset']} ({results['split']}); "
                 f"{results['epochs']} epochs per network", fontsize=10)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))


def _fmt(value: float, spec: str) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def consistency_table(results: dict) -> str:
    """One-screen text table: rows = setting x (width or baseline), per-layer measures, test metric."""
    ref, k = results["reference_width"], results["k"]
    rows = []
    for name, setting in results["settings"].items():
        layers = len(next(iter(setting["compare"].values())))
        label = "expander" if name == "with_expander" else "no expander"
        keys = [str(w) for w in results["widths"]]
        keys = sorted(keys, key=int) + list(BASELINES)
        for key in keys:
            row = {"setting": label, "scores": f"width {key}" if key not in BASELINES else key}
            compare = setting["compare"].get(key)
            for layer in range(layers):
                row[f"energy L{layer + 1}"] = _fmt(compare[layer]["energy"], ".3g") if compare else "ref"
            for layer in range(layers):
                row[f"top-{k} L{layer + 1}"] = _fmt(compare[layer]["topk"], ".3f") if compare else "ref"
            est = setting["estimators"].get(key)
            row[f"test {results['metric']}"] = f"{100 * est['test']:.2f}" if est else "-"
            row["best epoch"] = est["best_epoch"] if est else "-"  # the exported (best-val) checkpoint
            rows.append(row)
    title = (f"attention consistency on {results['dataset']} ({results['split']}): mean energy distance and "
             f"top-{k} agreement with width {ref}, {results['epochs']} epochs per network")
    return format_table(rows, title=title)
