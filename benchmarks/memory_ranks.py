"""Host memory of 1, 2 and 4 local processes on one graph: peak RSS and PSS per rank, per stage.

A synthetic planted-partition graph (``--nodes``, default 1M, degree 20, 128 features, random
60/20/20 split) is written once as a folder of ``.npy`` files; then for each process count the
pipeline runs in fresh processes (``W`` ranks under the library's launcher, 1 thread each) with
the preset the library picks by size (the large-graph preset at 1M nodes):

* ``load``    the graph loaded as the CLI loads it (under torchrun: by local rank 0 of the machine,
              memory-mapped by every rank: :mod:`spexphormer.distributed.machine_share`);
* ``stage1``  ``run``'s stage 1 for ``--stage1-epochs`` epochs (augment, estimator, export of the
              scores: sharded by destination under torchrun);
* ``stage2``  sampling of the neighbour tables from the scores and ``--stage2-steps`` data-parallel
              training steps of the wide model (``train_wide``'s steps: DDP, this rank's share of
              each global batch).

The parent samples every rank's ``/proc/<pid>/smaps_rollup`` every 0.1 s and attributes each
sample to the stage the rank reports (a one-line file per rank). Per stage: each rank's peak RSS
and PSS, their sums over the ranks (an upper bound of the peak of the sum), and the peak of the
sum of PSS over simultaneous samples. PSS counts a page shared by ``k`` processes as ``1/k`` in
each, so the sum of the ranks' PSS is what the job costs the machine; the sum of RSS counts
shared pages once per process. Also per stage 1: the resident bytes each rank has of the
augmented graph's edge arrays (from ``/proc/<pid>/smaps``, the mapped files' ``Rss``), against its
shard's share. Times: stage-1 seconds per epoch, stage-2 seconds per step (rank 0).

Usage::

    python benchmarks/memory_ranks.py --nodes 1000000 --procs 1,2,4
    python benchmarks/memory_ranks.py --nodes 20000 --procs 1,2 --json /tmp/m.json   # a quick check

Writes ``benchmarks/results/memory_ranks.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, child_env, int_list, machine, python, save_json  # noqa: E402

GIB = 1 << 30


# ------------------------------------------------------------------------------------------- ranks

def _report(folder: Path, stage: str, extra: dict | None = None) -> None:
    rank = os.environ.get("RANK", "0")
    record = {"pid": os.getpid(), "stage": stage, **(extra or {})}
    tmp = folder / f".rank{rank}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, folder / f"rank{rank}.json")


def worker(args) -> None:
    import torch

    from spexphormer.data.files import load_file
    from spexphormer.distributed import data_parallel as dp
    from spexphormer.distributed import init_from_env, shutdown, world
    from spexphormer.distributed.machine_share import shared_graph
    from spexphormer.pipeline.run import obtain_scores
    from spexphormer.pipeline.stage1_sharded import node_shard
    from spexphormer.pipeline.stage2 import batch_loss, build_wide_model, layer_sampler, model_inputs
    from spexphormer.presets import preset_for_size
    from spexphormer.sampling import derive_seed
    from spexphormer.utils.memory import release_free_memory

    init_from_env()
    status = Path(args.status)
    try:
        torch.set_num_threads(1)
        _report(status, "load")
        data = shared_graph(lambda: load_file(args.graph))
        cfg = preset_for_size(data.num_nodes).override([f"stage1.epochs={args.stage1_epochs}", "run.threads=1"])
        w = world()
        _report(status, "stage1")
        scores, stage1 = obtain_scores(data, cfg, Path(args.out), "cpu", progress=False)
        shard = node_shard(scores.graph, w.rank, w.size)
        held = {"shard_edge_bytes": (shard.edge_hi - shard.edge_lo) * 9,  # int32 source + destination, int8 type
                "all_edge_bytes": scores.graph.num_edges * 9,
                "stage1_seconds_per_epoch": stage1["seconds_per_epoch"]}
        _report(status, "stage2", held)
        s2 = cfg.stage2
        release_free_memory()  # as train_wide does first
        sampler = layer_sampler(scores, cfg, seed=0)
        layers = sampler.layers_for(0)
        train = (data.train_mask & (data.y >= 0)).nonzero().view(-1)
        x = model_inputs(data, cfg)
        torch.manual_seed(0)
        model = build_wide_model(data, cfg)
        net = dp.wrap(model, torch.device("cpu"))
        opt = torch.optim.AdamW(model.parameters(), lr=s2.lr, weight_decay=s2.weight_decay)
        step_s = []
        for step, (batch, weight) in enumerate(dp.shard_batches(train, s2.batch_size, layers,
                                                                seed=derive_seed(0, 0, 1 << 20))):
            if step == args.stage2_steps:
                break
            tic = time.perf_counter()
            loss = batch_loss(net, x, data, batch, torch.device("cpu")) * weight
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_s.append(time.perf_counter() - tic)
        _report(status, "done", {**held, "stage2_seconds_per_step": sum(step_s) / max(len(step_s), 1),
                                 "sampling_seconds": sampler.seconds, "stage2_steps": len(step_s)})
        if w.active:
            torch.distributed.barrier()  # the parent reads the last records while all ranks live
        time.sleep(0.5)
    finally:
        shutdown()


# ------------------------------------------------------------------------------------------- parent

def _augmented_rss(pid: int) -> int | None:
    """Resident bytes of the rank's maps of the machine's one augmented graph (its edge arrays)."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    total, current = 0, ""
    for line in text.splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:
            current = head[5] if len(head) >= 6 else ""
        elif head and head[0] == "Rss:" and current.endswith(("/augmented/edge_index.npy", "/augmented/edge_type.npy")):
            total += int(head[1]) * 1024
    return total


def _rollup(pid: int) -> dict[str, int] | None:
    """RSS, PSS and PSS of anonymous (private) and file-backed (mapped) pages, in bytes."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = {ln.split()[0]: int(ln.split()[1]) * 1024 for ln in text.splitlines()[1:] if len(ln.split()) >= 2}
    return {"rss": fields.get("Rss:", 0), "pss": fields.get("Pss:", 0), "pss_anon": fields.get("Pss_Anon:", 0),
            "pss_file": fields.get("Pss_File:", 0)}


def measure(args, nproc: int) -> dict:
    status = Path(tempfile.mkdtemp(prefix=f"memory-ranks-{nproc}-"))
    out = Path(tempfile.mkdtemp(prefix=f"memory-ranks-out-{nproc}-"))
    argv = ["--worker", "--graph", str(args.graph), "--out", str(out), "--status", str(status),
            "--stage1-epochs", str(args.stage1_epochs), "--stage2-steps", str(args.stage2_steps)]
    if nproc == 1:
        cmd = [python(), __file__, *argv]
    else:
        cmd = [python(), "-c", "import sys; from spexphormer.distributed.launch import launch_local; "
               f"sys.exit(launch_local({nproc}, {argv!r}, entry=[{__file__!r}]))"]
    job = subprocess.Popen(cmd, env=child_env(1))
    peaks: dict[str, dict] = {}  # stage -> rank -> {"rss", "pss"}
    sum_pss: dict[str, int] = {}
    records: dict[int, dict] = {}
    tic = time.perf_counter()
    while job.poll() is None:
        for file in status.glob("rank*.json"):
            try:
                records[int(file.stem[4:])] = json.loads(file.read_text())
            except (OSError, ValueError):
                pass
        total: dict[str, int] = {}
        for rank, rec in records.items():
            sample = _rollup(rec["pid"])
            if sample is None or rec["stage"] == "done":
                continue
            stage = rec["stage"]
            mine = peaks.setdefault(stage, {}).setdefault(rank, {"rss": 0, "pss": 0})
            if sample["pss"] > mine["pss"]:  # the split of PSS at its peak
                mine.update(pss_anon_at_peak=sample["pss_anon"], pss_file_at_peak=sample["pss_file"])
            mine["rss"], mine["pss"] = max(mine["rss"], sample["rss"]), max(mine["pss"], sample["pss"])
            total[stage] = total.get(stage, 0) + sample["pss"]
            if stage == "stage1" and (edges := _augmented_rss(rec["pid"])) is not None:
                mine["augmented_edge_bytes_resident"] = max(mine.get("augmented_edge_bytes_resident", 0), edges)
        for stage, value in total.items():
            sum_pss[stage] = max(sum_pss.get(stage, 0), value)
        time.sleep(0.1)
    shutil.rmtree(out, ignore_errors=True)  # the run's scores (GBs at 1M nodes)
    shutil.rmtree(status, ignore_errors=True)
    if job.returncode:
        raise SystemExit(f"the {nproc}-process job failed (status {job.returncode})")
    wall = time.perf_counter() - tic
    result = {"processes": nproc, "wall_seconds": round(wall, 1), "ranks": records, "stages": {}}
    for stage in ("load", "stage1", "stage2"):
        ranks = peaks.get(stage, {})
        result["stages"][stage] = {
            "per_rank": {r: {"peak_rss_gib": round(v["rss"] / GIB, 3), "peak_pss_gib": round(v["pss"] / GIB, 3),
                             "pss_anon_at_peak_gib": round(v.get("pss_anon_at_peak", 0) / GIB, 3),
                             "pss_file_at_peak_gib": round(v.get("pss_file_at_peak", 0) / GIB, 3),
                             **({"augmented_edge_bytes_resident": v["augmented_edge_bytes_resident"]}
                                if "augmented_edge_bytes_resident" in v else {})}
                         for r, v in sorted(ranks.items())},
            "sum_of_peak_rss_gib": round(sum(v["rss"] for v in ranks.values()) / GIB, 3),
            "sum_of_peak_pss_gib": round(sum(v["pss"] for v in ranks.values()) / GIB, 3),
            "peak_of_summed_pss_gib": round(sum_pss.get(stage, 0) / GIB, 3)}
    return result


def make_graph(nodes: int, folder: Path) -> Path:
    if (folder / "x.npy").is_file():
        return folder
    import numpy as np

    from spexphormer.data import planted_partition
    data = planted_partition(nodes, avg_degree=20, num_features=128, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        np.save(folder / f"{key}.npy", getattr(data, key).numpy())
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--procs", type=int_list, default=[1, 2, 4])
    p.add_argument("--stage1-epochs", type=int, default=2)
    p.add_argument("--stage2-steps", type=int, default=8)
    p.add_argument("--graph", type=Path, help="a folder of .npy files (default: generated under the temp folder)")
    p.add_argument("--json", type=Path, default=RESULTS / "memory_ranks.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--status", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    args.graph = args.graph or make_graph(args.nodes, Path(tempfile.gettempdir()) / f"planted-{args.nodes}")
    runs = []
    for nproc in args.procs:
        runs.append(measure(args, nproc))
        s = runs[-1]["stages"]
        print(f"{nproc} process(es): " + ", ".join(
            f"{st} PSS sum {s[st]['sum_of_peak_pss_gib']:.2f} GiB "
            f"(peak of the sum {s[st]['peak_of_summed_pss_gib']:.2f}; RSS sum {s[st]['sum_of_peak_rss_gib']:.2f})"
            for st in s), flush=True)
    one = {st: runs[0]["stages"][st]["sum_of_peak_pss_gib"] for st in runs[0]["stages"]} \
        if runs[0]["processes"] == 1 else None
    for run in runs:
        if one:
            run["pss_ratio_to_one_process"] = {st: round(run["stages"][st]["sum_of_peak_pss_gib"] / one[st], 3)
                                               for st in one if one[st]}
    save_json({"nodes": args.nodes, "graph": str(args.graph), "stage1_epochs": args.stage1_epochs,
               "stage2_steps": args.stage2_steps, "runs": runs, "machine": machine()}, args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
