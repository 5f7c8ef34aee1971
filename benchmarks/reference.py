"""The authors' released code, run end to end on this machine, beside ours on the same dataset.

Measures, for Minesweeper, Tolokers and Actor, the best-validation epoch's validation and test
metric of both stages of the authors' code (``hamed1375/Sp_Exphormer`` at 1436adf, its configs
unchanged, CPU overrides only): stage 1 (the attention-score estimator, ``<name>_ASE.yaml``) and
stage 2 (Spexphormer, ``<name>_spexphormer.yaml``), with the epoch counts and wall seconds.

    python benchmarks/reference.py --ref-dir /work/ref/Sp_Exphormer --python /work/ref/venv/bin/python \\
        --dataset minesweeper --runs 3 --threads 2 --work /work/ref/runs

Run ``r`` (0-based) uses seed ``r`` for both stages, in its own scratch folder
``<work>/<dataset>-run<r>/`` outside this repository (the authors' code reads its dataset and
writes its attention scores relative to its working folder; their code never enters ours). The
dataset's raw files are copied there from ``--data-root``. Stage 2 reads the scores of seed 0
whatever its own seed (``read_scores(seed=0)`` in their ``train_with_sampling.py``), so for r > 0
the stage-1 files ``seed<r>_h4_layer_<i>.npy`` are copied to the ``seed0_...`` names in that run's
folder before stage 2. Finished stages are read back from their folder (``done.json``), so the
script resumes where it stopped.

The best epoch is chosen as the authors' code does: the first epoch with the highest validation
metric (``metric_best``, ``metric_agg: argmax``), read from GraphGym's per-epoch
``<out_dir>/<cfg>/<seed>/{val,test}/stats.json`` and checked against the last "Best so far" line
of its log.

``--ours`` runs our pipeline (``spexphormer.pipeline.run``, the paper preset, seeds 0..N-1; seed s
sets ``run.seed``, ``graph.seed`` and ``stage1.seed``, so each seed has its own expander and
stage 1) on the same dataset (``actor-reference`` for Actor: the reference's unseeded
class-balanced 50/25/25 split, row-normalised features, directed edges) and writes
``results/ours_vs_reference_<dataset>.json`` with both sides, means ± sample std (ddof=1), the
differences of the means with their Welch 95% confidence intervals, and Welch's t-test and the
Mann-Whitney U test of "same distribution" (a collapsed estimator run is an outlier a t-test
handles badly; the ranks do not care); without ``--ours`` it writes ``results/reference_<dataset>.json`` only.
``--collect`` re-reads the finished runs without starting any (``--ours --collect``: ours against
the reference runs finished so far). ``--stage1-only`` runs and compares the estimators alone
(theirs: the ASE config only, in the same run folders, so a later full run goes on from there;
ours: ``spexphormer.pipeline.stage1.estimate``), cheap enough for many seeds:
``results/ours_vs_reference_<dataset>_stage1.json``. ``--paired`` runs our seed r on the
features, labels and split the authors' run r trained on (exported from its folder by their
interpreter; our edges), so the two sides differ only by the code and its random draws, and
compares them run by run (paired t-test, Wilcoxon): ``results/ours_vs_reference_<dataset>_paired.json``.
Their Actor loader reads features and labels by the node file's row, not its ``node_id`` column,
so on their Actor the edges join other nodes than the features and labels say (``reference_data``
in each row records whether their node order is ours).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean, stdev

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, REPO, RESULTS, machine, save_json, table  # noqa: E402

REF_COMMIT = "1436adf"

# our dataset name -> the reference's config folder, GraphGym dataset name, raw files to copy
# (source under --data-root, destination under the run folder) and metric
DATASETS = {
    "minesweeper": {"cfg_dir": "configs/heterophilic/minesweeper", "prefix": "minesweeper", "name": "Minesweeper",
                    "raw": [("Heterophilous/minesweeper/raw/minesweeper.npz",
                             "datasets/Heterophilous/minesweeper/raw/minesweeper.npz")],
                    "metric": "auc", "ours": "minesweeper"},
    "tolokers": {"cfg_dir": "configs/heterophilic/tolokers", "prefix": "tolokers", "name": "Tolokers",
                 "raw": [("Heterophilous/tolokers/raw/tolokers.npz", "datasets/Heterophilous/tolokers/raw/tolokers.npz")],
                 "metric": "auc", "ours": "tolokers"},
    "actor": {"cfg_dir": "configs/heterophilic/actor", "prefix": "actor", "name": "actor",
              "raw": [(f"Actor/raw/{f}", f"datasets/actor/actor/raw/{f}")
                      for f in ("out1_graph_edges.txt", "out1_node_feature_label.txt")],
              "metric": "accuracy", "ours": "actor-reference"},
}
STAGES = (("stage1", "ASE"), ("stage2", "spexphormer"))
BEST_RE = re.compile(r"Best so far: epoch (\d+).*?val_loss: [0-9.]+ val_(\w+): ([0-9.]+)\s+test_loss: [0-9.]+ "
                     r"test_\w+: ([0-9.]+)")


class BadInput(Exception):
    pass


def _epochs(stats: Path) -> list[dict]:
    return [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]


def parse_stage(stage_dir: Path, cfg_name: str, seed: int, metric: str) -> dict:
    """The best-validation epoch of one finished GraphGym run under ``stage_dir/results``."""
    run_dir = stage_dir / "results" / cfg_name / str(seed)
    val, test = _epochs(run_dir / "val" / "stats.json"), _epochs(run_dir / "test" / "stats.json")
    vals = [e[metric] for e in val]
    best = vals.index(max(vals))  # numpy argmax: the first of equal maxima, as their loop
    out = {"best_epoch": best, "epochs": len(val), "val": round(100 * val[best][metric], 4),
           "test": round(100 * test[best][metric], 4),
           "val_epoch_record": val[best]["epoch"]}
    log = run_dir / "logging.log"
    if log.exists():
        hits = BEST_RE.findall(log.read_text())
        if hits:
            e, _, v, t = hits[-1]
            out["log_best"] = {"epoch": int(e), "val": round(100 * float(v), 4), "test": round(100 * float(t), 4)}
            if int(e) != best:
                out["log_mismatch"] = True
    return out


def ref_command(args, spec: dict, stage_cfg: str, seed: int) -> list[str]:
    cfg = Path(args.ref_dir) / spec["cfg_dir"] / f"{spec['prefix']}_{stage_cfg}.yaml"
    return [args.python, str(Path(args.ref_dir) / "main.py"), "--cfg", str(cfg),
            "wandb.use", "False", "accelerator", "cpu", "gpu_mem", "False", "num_threads", str(args.threads),
            "out_dir", "results", "seed", str(seed)] + (["optim.max_epoch", str(args.max_epoch)] if args.max_epoch else [])


def ref_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED="1", WANDB_MODE="disabled")
    return env


def run_reference(args, spec: dict, r: int) -> dict:
    """Run (or read back) both stages of reference run ``r`` in ``<work>/<dataset>-run<r>``."""
    folder = Path(args.work) / f"{args.dataset}-run{r}"
    tag = f"-e{args.max_epoch}" if args.max_epoch else ""
    folder = folder.with_name(folder.name + tag)
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in spec["raw"]:
        d = folder / dst
        if not d.exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(args.data_root) / src, d)
    row = {"run": r, "seed": r, "folder": str(folder)}
    for stage, stage_cfg in stages(args):
        done = folder / f"{stage}.done.json"
        cfg_name = f"{spec['prefix']}_{stage_cfg}"
        if done.exists():
            row[stage] = json.loads(done.read_text())
            continue
        if args.collect:
            row[stage] = None
            return row
        if stage == "stage2" and r != 0:  # their stage 2 reads seed 0's scores whatever its seed
            sdir = folder / "Attention_scores" / spec["name"]
            for f in sorted(sdir.glob(f"seed{r}_h*_layer_*.npy")):
                shutil.copyfile(f, sdir / f.name.replace(f"seed{r}_", "seed0_", 1))
        cmd = ref_command(args, spec, stage_cfg, r)
        print(f"[{time.strftime('%H:%M:%S')}] {args.dataset} run {r} {stage}: {' '.join(cmd)}  (cwd {folder})",
              flush=True)
        t0 = time.time()
        with open(folder / f"{stage}.log", "w") as log:
            rc = subprocess.call(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=ref_env(args.threads))
        seconds = time.time() - t0
        if rc != 0:
            raise RuntimeError(f"{args.dataset} run {r} {stage} failed (rc {rc}); see {folder / (stage + '.log')}")
        res = parse_stage(folder, cfg_name, r, spec["metric"])
        res.update(seconds=round(seconds, 1), command=cmd, cwd=str(folder), threads=args.threads,
                   finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        done.write_text(json.dumps(res, indent=2) + "\n")
        row[stage] = res
        print(f"[{time.strftime('%H:%M:%S')}] {args.dataset} run {r} {stage}: best epoch {res['best_epoch']} "
              f"val {res['val']:.2f} test {res['test']:.2f} ({seconds:.0f} s)", flush=True)
    return row


def stages(args) -> tuple:
    return STAGES[:1] if args.stage1_only else STAGES


def summary(values: list[float]) -> dict:
    return {"mean": mean(values) if values else None, "std": stdev(values) if len(values) > 1 else None,
            "n": len(values), "values": values}


def difference(ours: list[float], theirs: list[float]) -> dict | None:
    """Ours minus theirs: the difference of the means, its Welch 95% confidence interval, and two
    tests of "same distribution" (Welch's t-test, and Mann-Whitney U, which does not assume the
    normality a collapsed run breaks). None with fewer than 2 values on a side."""
    if len(ours) < 2 or len(theirs) < 2:
        return None
    from scipy import stats

    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    delta = float(a.mean() - b.mean())
    welch = stats.ttest_ind(a, b, equal_var=False)
    return {"delta": delta, "se": se, "ci95": _interval(welch, delta, se),
            "welch_p": float(welch.pvalue) if se > 0 else None,
            "mann_whitney_p": float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue),
            "median_ours": float(np.median(a)), "median_theirs": float(np.median(b)), "n": [len(a), len(b)]}


def _interval(test, delta: float, se: float) -> list[float]:
    """The 95% confidence interval of a scipy t-test's difference (a point without spread)."""
    if se == 0:
        return [delta, delta]
    ci = test.confidence_interval(0.95)
    return [float(ci.low), float(ci.high)]


def paired_difference(ours: dict[int, float], theirs: dict[int, float]) -> dict | None:
    """Ours minus theirs run by run (``--paired``: our seed r on the data of their run r): the mean
    difference, its 95% confidence interval, the paired t-test and the Wilcoxon signed-rank test."""
    runs = sorted(set(ours) & set(theirs))
    if len(runs) < 2:
        return None
    from scipy import stats

    d = np.array([ours[r] - theirs[r] for r in runs], dtype=float)
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    paired = stats.ttest_rel([ours[r] for r in runs], [theirs[r] for r in runs])
    return {"runs": runs, "differences": d.tolist(), "delta": float(d.mean()), "se": se,
            "ci95": _interval(paired, float(d.mean()), se),
            "paired_t_p": float(paired.pvalue) if se > 0 else None,
            "wilcoxon_p": float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else None}


def fmt(s: dict | None) -> str:
    if not s or s["mean"] is None:
        return "-"
    return f"{s['mean']:.2f} ± {s['std']:.2f} (n={s['n']})" if s["std"] is not None else f"{s['mean']:.2f} (n=1)"


def reference_side(args, spec) -> dict:
    rows = [run_reference(args, spec, r) for r in range(args.from_run, args.runs)]
    out = {"rows": rows}
    for stage, _ in STAGES:  # a stage not run summarises to n = 0
        fin = [r[stage] for r in rows if r.get(stage)]
        out[stage] = {"val": summary([f["val"] for f in fin]), "test": summary([f["test"] for f in fin]),
                      "seconds": summary([f["seconds"] for f in fin])}
    return out


EXPORT_DATA = """
import sys, glob, numpy as np, torch
folder, out = sys.argv[1], sys.argv[2]
files = glob.glob(folder + "/datasets/**/processed/data.pt", recursive=True)
if len(files) != 1:
    sys.exit(f"expected one processed dataset under {folder}/datasets, found {len(files)}")
data = torch.load(files[0], weights_only=False)[0]
data = data if isinstance(data, dict) else data.to_dict()
for key in ("x", "y", "train_mask", "val_mask", "test_mask", "edge_index"):
    np.save(f"{out}/{key}.npy", data[key].numpy())
"""


def reference_data(args, spec, r: int) -> Path:
    """The features, labels, masks and edges the authors' run ``r`` trained on, as ``.npy`` files
    in ``<run folder>/exported`` (written by their interpreter from their processed dataset file,
    so nothing of theirs is unpickled here)."""
    folder = Path(args.work) / f"{args.dataset}-run{r}"
    out = folder / "exported"
    if not (out / "test_mask.npy").is_file():
        out.mkdir(exist_ok=True)
        proc = subprocess.run([args.python, "-c", EXPORT_DATA, str(folder), str(out)], env=ref_env(1),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1][-300:]
            raise RuntimeError(f"exporting the data of reference run {r} ({folder}) failed: {last}")
    return out


def on_reference_data(data, exported: Path, r: int):
    """``data`` with the authors' run ``r``'s features, labels and split (our edges kept: theirs
    are the same node pairs with the raw file's repeats and self-loops). Returns (data, facts):
    whether their node order is ours, and how their edges compare."""
    from dataclasses import replace

    import torch

    load = lambda k: np.load(exported / f"{k}.npy", allow_pickle=False)  # noqa: E731
    x, y, ei = load("x"), load("y"), load("edge_index")
    if x.shape != tuple(data.x.shape):
        raise RuntimeError(f"run {r}: their features are {x.shape}, ours {tuple(data.x.shape)}")
    n = data.num_nodes
    ours_pairs = np.unique(data.edge_index[0].numpy().astype(np.int64) * n + data.edge_index[1].numpy())  # u*n+v
    theirs_pairs = np.unique(ei[0].astype(np.int64) * n + ei[1])
    only_theirs = np.setdiff1d(theirs_pairs, ours_pairs, assume_unique=True)
    facts = {"same_node_order": bool(np.allclose(x, data.x.numpy()) and np.array_equal(y, data.y.numpy())),
             "their_edge_rows": int(ei.shape[1]), "their_distinct_pairs": int(theirs_pairs.size),
             "their_self_loops": int((ei[0] == ei[1]).sum()), "our_edges": int(ours_pairs.size),
             "pairs_only_theirs_not_self_loops": int((only_theirs // n != only_theirs % n).sum()),
             "pairs_only_ours": int(np.setdiff1d(ours_pairs, theirs_pairs, assume_unique=True).size)}
    data = data.clone()
    data.x, data.y = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    for k in ("train", "val", "test"):
        setattr(data, f"{k}_mask", torch.from_numpy(load(f"{k}_mask")).bool())
    data.info = replace(data.info, split=f"the authors' run {r}: their features, labels and split", source=None)
    return data, facts


def our_config(spec, seed: int, args):
    """The paper preset for our seed ``seed``: as the reference's run r, its own expander and estimator."""
    from spexphormer.presets import preset

    return preset(spec["ours"], "spexphormer").override(
        [f"run.seed={seed}", "run.seeds=1", f"graph.seed={seed}", f"stage1.seed={seed}",
         f"run.threads={args.threads}", "run.device=cpu"] + list(args.set))


def ours_side(args, spec) -> dict:
    """Our pipeline through the Python API, paper preset, seeds 0..N-1, one stage 1 each."""
    sys.path.insert(0, str(REPO / "src"))
    from spexphormer.data import load_graph
    from spexphormer.pipeline.run import run
    from spexphormer.utils.device import set_threads

    set_threads(args.threads)
    if args.stage1_only:
        return ours_estimators(args, spec)
    rows = []
    for seed in range(args.seeds):
        # as the reference's run r: its own expander, its own estimator, and (Actor) its own random split
        data = load_graph(dataset=spec["ours"], root=args.data_root, seed=seed)
        facts, folder = None, Path(args.ours_runs) / spec["ours"] / f"seed{seed}"
        if args.paired:  # seed r on the data of their run r
            data, facts = on_reference_data(data, reference_data(args, spec, seed), seed)
            folder = folder.with_name(f"paired-run{seed}")
        cfg = our_config(spec, seed, args)
        t0 = time.time()
        res = run(data, cfg, folder, progress=False, resume=True)  # a finished seed is read back
        s1 = res["stages"].get("stage1", {})  # (its training times are in "stages", not this call's)
        rows.append({"seed": seed, "estimator_val": _pct(s1.get("val")), "estimator_test": _pct(s1.get("test")),
                     "val": 100 * res["val"]["mean"], "test": 100 * res["test"]["mean"],
                     "seconds_this_call": round(time.time() - t0, 1), "stages": res["stages"],
                     **({"reference_data": facts} if facts else {})})
        e = rows[-1]["estimator_test"]
        print(f"ours {spec['ours']} seed {seed}: estimator test {'-' if e is None else f'{e:.2f}'} "
              f"model val {rows[-1]['val']:.2f} test {rows[-1]['test']:.2f}", flush=True)
    return {"rows": rows, "dataset": spec["ours"], "overrides": list(args.set), "paired": args.paired,
            "stage1": {"test": summary([r["estimator_test"] for r in rows if r["estimator_test"] is not None]),
                       "val": summary([r["estimator_val"] for r in rows if r["estimator_val"] is not None])},
            "stage2": {"test": summary([r["test"] for r in rows]), "val": summary([r["val"] for r in rows])}}


def ours_estimators(args, spec) -> dict:
    """Our estimator alone (stage 1 of the paper preset), seeds 0..N-1, as ``ours_side`` seeds them."""
    from spexphormer.data import load_graph
    from spexphormer.pipeline.stage1 import estimate

    rows = []
    for seed in range(args.seeds):
        data = load_graph(dataset=spec["ours"], root=args.data_root, seed=seed)
        cfg = our_config(spec, seed, args)
        done = Path(args.ours_runs) / spec["ours"] / f"stage1-seed{seed}-{cfg.stage1_key()}.json"
        if done.exists():  # finished before (same graph, estimator and seed): read back
            rows.append(json.loads(done.read_text()))
        else:
            t0 = time.time()
            fit = estimate(data, cfg, progress=False).fit
            best = fit.history[fit.best_epoch]
            rows.append({"seed": seed, "best_epoch": fit.best_epoch, "estimator_val": 100 * best["val"],
                         "estimator_test": 100 * best["test"], "seconds": round(time.time() - t0, 1)})
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(rows[-1], indent=2) + "\n")
        print(f"ours {spec['ours']} seed {seed}: estimator best epoch {rows[-1]['best_epoch']} val "
              f"{rows[-1]['estimator_val']:.2f} test {rows[-1]['estimator_test']:.2f}", flush=True)
    return {"rows": rows, "dataset": spec["ours"], "overrides": list(args.set),
            "stage1": {"test": summary([r["estimator_test"] for r in rows]),
                       "val": summary([r["estimator_val"] for r in rows])},
            "stage2": {"test": summary([]), "val": summary([])}}


def _pct(x):
    """A stage-1 metric as recorded by our pipeline (a fraction or a {"mean": ...}) in percent."""
    if x is None:
        return None
    if isinstance(x, dict):
        x = x.get("mean", x.get("value"))
    return None if x is None else 100 * float(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-dir", required=True, help="the authors' code (a checkout of Sp_Exphormer at 1436adf)")
    p.add_argument("--python", required=True, help="the interpreter of a virtualenv with the authors' requirements")
    p.add_argument("--dataset", required=True, help="minesweeper, tolokers or actor")
    p.add_argument("--runs", type=int, default=3, help="reference runs, seeds 0..runs-1 (default 3)")
    p.add_argument("--from-run", type=int, default=0,
                   help="first reference run (default 0): two processes can share out runs a..b-1 and b..c-1")
    p.add_argument("--threads", type=int, default=1, help="threads per run (default 1)")
    p.add_argument("--work", default="/work/ref/runs", help="scratch folder for the runs, outside the repository")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--max-epoch", type=int, default=None, help="override both stages' epochs (smoke tests only)")
    p.add_argument("--collect", action="store_true", help="read back finished runs only; start none")
    p.add_argument("--ours", action="store_true", help="also run ours (paper preset) and write the comparison")
    p.add_argument("--seeds", type=int, default=5, help="our seeds with --ours (default 5)")
    p.add_argument("--ours-runs", default=str(RESULTS / "runs" / "ours_vs_reference"), help="our runs' folder")
    p.add_argument("--set", action="append", default=[], help="config override for ours, repeatable")
    p.add_argument("--out", default=None, help="JSON path (default results/reference_<dataset>.json)")
    p.add_argument("--paired", action="store_true",
                   help="ours seed r on the features, labels and split of their run r (read from its folder), "
                        "compared run by run; our run folders paired-run<r>")
    p.add_argument("--stage1-only", action="store_true",
                   help="the estimators alone (both sides); JSON names get a _stage1 suffix")
    p.add_argument("--compare-out", default=None,
                   help="--ours JSON path (default results/ours_vs_reference_<dataset>.json)")
    args = p.parse_args(argv)
    try:
        spec = DATASETS.get(args.dataset)
        if spec is None:
            raise BadInput(f"unknown dataset {args.dataset!r} (choose from {', '.join(DATASETS)})")
        if not (Path(args.ref_dir) / "main.py").is_file():
            raise BadInput(f"--ref-dir {args.ref_dir}: no main.py there (expected the authors' Sp_Exphormer checkout)")
        if not os.access(args.python, os.X_OK):
            raise BadInput(f"--python {args.python}: not an executable")
        if args.runs < 1 or args.threads < 1 or args.seeds < 1:
            raise BadInput("--runs, --threads and --seeds must be at least 1")
        if args.paired and (args.stage1_only or args.seeds > args.runs):
            raise BadInput("--paired needs a reference run for each of our seeds (--seeds <= --runs), both stages")
        if not 0 <= args.from_run < args.runs:
            raise BadInput("--from-run must be at least 0 and below --runs")
        if args.max_epoch is not None and args.max_epoch < 1:
            raise BadInput("--max-epoch must be at least 1")
        work = Path(args.work).resolve()
        if work == REPO or REPO in work.parents:
            raise BadInput(f"--work {work} is inside the repository; the authors' runs go outside it")
        for src, _ in spec["raw"]:
            if not (Path(args.data_root) / src).is_file():
                raise BadInput(f"--data-root {args.data_root}: missing {src}")
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    t0 = time.time()
    try:
        ref = reference_side(args, spec)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = {"benchmark": "reference", "dataset": args.dataset, "metric": spec["metric"],
              "reference": {"repo": "hamed1375/Sp_Exphormer", "commit": REF_COMMIT, "ref_dir": str(args.ref_dir),
                            "python": args.python, "configs": [f"{spec['cfg_dir']}/{spec['prefix']}_{c}.yaml"
                                                               for _, c in stages(args)],
                            "overrides": "wandb.use False accelerator cpu gpu_mem False num_threads N out_dir results "
                                         "seed r" + (f" optim.max_epoch {args.max_epoch}" if args.max_epoch else ""),
                            "note": "stage 2 reads seed 0's score files; for r > 0 seed r's are copied to those names"},
              "protocol": "run r: seed r for both stages, its own folder; best epoch = first argmax of the val metric; "
                          "mean and sample std (ddof=1) over runs; metric in percent",
              "threads": args.threads, **ref, "machine": dict(machine(), threads_per_job=args.threads),
              "wall_seconds": round(time.time() - t0, 1)}
    suffix = "_stage1" if args.stage1_only else "_paired" if args.paired else ""
    out = Path(args.out) if args.out else RESULTS / f"reference_{args.dataset}{suffix}.json"
    save_json(result, out)
    rows = [{"run": r["run"], "estimator val": _f(r.get("stage1"), "val"), "estimator test": _f(r.get("stage1"), "test"),
             "s1 epochs": _f(r.get("stage1"), "epochs"), "s1 s": _f(r.get("stage1"), "seconds"),
             "model val": _f(r.get("stage2"), "val"), "model test": _f(r.get("stage2"), "test"),
             "s2 epochs": _f(r.get("stage2"), "epochs"), "s2 s": _f(r.get("stage2"), "seconds")}
            for r in ref["rows"]]
    print(table(rows, f"authors' code, {args.dataset} ({spec['metric']}, %, best-val epoch)"))
    print(f"estimator test {fmt(ref['stage1']['test'])}; model test {fmt(ref['stage2']['test'])}")
    print(f"wrote {out}")

    if args.ours:
        try:
            ours = ours_side(args, spec)
        except RuntimeError as exc:  # e.g. --paired: a reference run whose data cannot be exported
            print(f"error: {exc}", file=sys.stderr)
            return 1
        cmp = {"benchmark": "ours_vs_reference", "dataset": args.dataset, "metric": spec["metric"],
               "reference": result, "ours": ours, "machine": dict(machine(), threads_per_job=args.threads),
               "delta_means": {s: (ours[s]["test"]["mean"] - ref[s]["test"]["mean"])
                               if ours[s]["test"]["mean"] is not None and ref[s]["test"]["mean"] is not None else None
                               for s in ("stage1", "stage2")},
               "difference": {s: difference(ours[s]["test"]["values"], ref[s]["test"]["values"])
                              for s in ("stage1", "stage2")}}
        if args.paired:
            keys = {"stage1": "estimator_test", "stage2": "test"}
            cmp["paired_difference"] = {
                s: paired_difference({r["seed"]: r[keys[s]] for r in ours["rows"] if r.get(keys[s]) is not None},
                                     {r["run"]: r[s]["test"] for r in ref["rows"] if r.get(s)})
                for s in ("stage1", "stage2")}
        cout = (Path(args.compare_out) if args.compare_out
                else RESULTS / f"ours_vs_reference_{args.dataset}{suffix}.json")
        save_json(cmp, cout)
        d = cmp["delta_means"]
        print(table([{"dataset": args.dataset, "estimator ours": fmt(ours["stage1"]["test"]),
                      "estimator authors'": fmt(ref["stage1"]["test"]),
                      "Δ": "-" if d["stage1"] is None else f"{d['stage1']:+.2f}",
                      "paper model ours": fmt(ours["stage2"]["test"]), "authors'": fmt(ref["stage2"]["test"]),
                      "Δ ": "-" if d["stage2"] is None else f"{d['stage2']:+.2f}"}],
                    "ours against the authors' code, same machine (test, %)"))
        for stage, what in (("stage1", "estimator"), ("stage2", "paper model")):
            d = cmp["difference"][stage]
            if d:
                print(f"{what}: ours - theirs = {d['delta']:+.2f} (95% CI {d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f}; "
                      f"Welch p = {d['welch_p']:.3g}, Mann-Whitney p = {d['mann_whitney_p']:.3g}; medians "
                      f"{d['median_ours']:.2f} vs {d['median_theirs']:.2f}; n = {d['n'][0]} vs {d['n'][1]})")
            d = cmp.get("paired_difference", {}).get(stage)
            if d:
                print(f"{what}, run by run on the same data: ours - theirs = {d['delta']:+.2f} (95% CI "
                      f"{d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f}; paired t p = {d['paired_t_p']:.3g}, "
                      f"Wilcoxon p = {d['wilcoxon_p']:.3g}; {len(d['runs'])} runs)")
        print(f"wrote {cout}")
    return 0


def _f(d, key):
    if not d:
        return "-"
    v = d[key]
    return f"{v:.2f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    sys.exit(main())
