"""Benchmark one forward + backward of the three attention primitives.

Cases (all on one random graph of the given size):

* ``score``      ScoreAttention (stage-1 ASE form), d=4, 1 head, on the augmented edge list;
* ``edge_list``  EdgeListAttention (full-batch Exphormer form), d=32, 4 heads, same edge list;
* ``neighbour``  NeighbourAttention (stage-2 form), d=32, 4 heads, a [N, k] table (k=10),
  i.e. one layer over every node of the graph.

The default size is Tolokers after augmentation: N = 11,758 nodes and E = 1,400,000 directed
edges, of which 2*15*N are expander in-edges (15 random permutation cycles, both directions) and N
self-loops; the rest are random graph edges. ``--nodes/--edges`` choose a larger graph.

Each case runs in a fresh child process. Time: median of ``--repeats`` forward+backward passes
after one warm-up pass. Memory on CPU: the child frees the set-up garbage (``malloc_trim``),
resets its peak RSS (``/proc/self/clear_refs`` = 5) and reads its RSS; the figure is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the passes minus that RSS, i.e. the peak extra
memory of one forward+backward (inputs, module and graph excluded; allocator slack and lazily
created thread pools included). On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the
first pass.

Usage::

    python benchmarks/attention.py                       # Tolokers size, all cases
    python benchmarks/attention.py --nodes 100000 --edges 10000000 --cases edge_list neighbour

Prints a table and writes ``benchmarks/results/attention.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "score": dict(module="ScoreAttention", dim=4, heads=1),
    "edge_list": dict(module="EdgeListAttention", dim=32, heads=4),
    "neighbour": dict(module="NeighbourAttention", dim=32, heads=4),
}
ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "attention.json"


def random_augmented_graph(n: int, e_total: int, exp_deg: int, seed: int):
    """Random graph edges + ``exp_deg`` permutation cycles (both directions) + self-loops."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n_exp, n_loop = 2 * exp_deg * n, n
    n_graph = e_total - n_exp - n_loop
    if n_graph < 0:
        raise SystemExit(f"--edges {e_total} is below the {n_exp + n_loop} expander + self-loop edges")
    src_g = torch.randint(0, n, (n_graph,), generator=g)
    dst_g = torch.randint(0, n, (n_graph,), generator=g)
    perms = torch.stack([torch.randperm(n, generator=g) for _ in range(exp_deg)])  # [c, n]
    nxt = perms.roll(-1, dims=1)
    src_e = torch.cat([perms.reshape(-1), nxt.reshape(-1)])
    dst_e = torch.cat([nxt.reshape(-1), perms.reshape(-1)])
    loops = torch.arange(n)
    edge_index = torch.stack([torch.cat([src_g, src_e, loops]), torch.cat([dst_g, dst_e, loops])])
    edge_type = torch.cat(
        [torch.zeros(n_graph, dtype=torch.long), torch.ones(n_exp, dtype=torch.long),
         torch.full((n_loop,), 2, dtype=torch.long)]
    )
    order = torch.argsort(edge_index[1], stable=True)  # sorted by destination, as augment does
    return edge_index[:, order].contiguous(), edge_type[order].contiguous()


def _reset_peak_rss() -> tuple:
    """Return freed heap to the OS and reset the peak RSS, so that ``ru_maxrss`` afterwards is
    the peak of what follows. Returns (baseline bytes, description of the method)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM / ru_maxrss (Linux 4.0+)
            f.write("5")
        with open("/proc/self/status") as f:
            rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss_kib * 1024, "ru_maxrss minus RSS before the first pass (peak reset), per child"
    except (OSError, AttributeError, StopIteration):
        return (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "ru_maxrss increase over its value before the first pass, per child",
        )


def run_child(args) -> dict:
    import torch

    import spexphormer.nn as snn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    spec = CASES[args.child]
    n, d, heads = args.nodes, spec["dim"], spec["heads"]
    module = getattr(snn, spec["module"])(d, heads=heads).to(device)
    x = torch.randn(n, d, device=device, requires_grad=True)
    if args.child == "neighbour":
        g = torch.Generator().manual_seed(args.seed)
        index = torch.randint(0, n, (n, args.k), generator=g).to(device)
        types = torch.randint(0, 3, (n, args.k), generator=g).to(device)
        call = lambda: module(x, index, types)  # noqa: E731
        num_edges = n * args.k
    else:
        edge_index, edge_type = random_augmented_graph(n, args.edges, args.exp_deg, args.seed)
        edge_index, edge_type = edge_index.to(device), edge_type.to(device)
        if args.child == "score":
            call = lambda: module(x, edge_index, edge_type, 0.5)[0]  # noqa: E731
        else:
            call = lambda: module(x, edge_index, edge_type)  # noqa: E731
        num_edges = edge_index.size(1)

    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def step():
        out = call()
        out.sum().backward()
        x.grad = None
        module.zero_grad(set_to_none=True)

    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        how = "torch.cuda.max_memory_allocated increase"
    else:
        base, how = _reset_peak_rss()
    times = []
    for i in range(args.repeats + 1):
        t0 = time.perf_counter()
        step()
        sync()
        if i > 0:  # the first pass is a warm-up
            times.append(time.perf_counter() - t0)
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base  # KiB on Linux
    return dict(
        case=args.child,
        module=spec["module"],
        dim=d,
        heads=heads,
        k=args.k if args.child == "neighbour" else None,
        nodes=n,
        edges=num_edges,
        median_s=statistics.median(times),
        times_s=times,
        peak_mem_mib=peak / 2**20,
        floats_per_edge_at_peak=peak / 4 / num_edges,
        memory_method=how,
        device=str(device),
        threads=args.threads,
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=11_758)
    p.add_argument("--edges", type=int, default=1_400_000, help="total, incl. expander + loops")
    p.add_argument("--exp-deg", type=int, default=15, help="permutation cycles in the expander")
    p.add_argument("--k", type=int, default=10, help="neighbours per node (neighbour case)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args)))
        return

    rows = []
    for case in args.cases:
        cmd = [sys.executable, __file__, "--child", case] + [
            f"--{k}={v}" for k, v in [
                ("nodes", args.nodes), ("edges", args.edges), ("exp-deg", args.exp_deg),
                ("k", args.k), ("repeats", args.repeats), ("threads", args.threads),
                ("device", args.device), ("seed", args.seed),
            ]
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise SystemExit(f"case {case} failed")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))

    import torch

    header = f"{'case':<10} {'module':<19} {'d':>3} {'H':>2} {'edges':>10} {'median s':>9} {'peak MiB':>9} {'floats/edge':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:<10} {r['module']:<19} {r['dim']:>3} {r['heads']:>2} {r['edges']:>10,} "
            f"{r['median_s']:>9.3f} {r['peak_mem_mib']:>9.1f} {r['floats_per_edge_at_peak']:>11.1f}"
        )
    print(f"(forward+backward, median of {args.repeats}; memory: {rows[0]['memory_method']})")
    meta = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"},
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(meta=meta, results=rows), indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
