"""Render ``benchmarks/results/REPORT.md`` from the benchmark JSON files only.

Reads (when present) ``accuracy.json``, ``scaling.json``, ``batch_size.json``,
``sampler_100k.json``, ``sampler_1M.json`` and ``attention.json`` from ``--results``; with
``--quick`` the ``*_quick.json`` files and writes ``REPORT_quick.md`` (smoke numbers). Nothing is
measured or recomputed here except ratios and fits of numbers already in the JSON.

Usage::

    python benchmarks/report.py            # -> benchmarks/results/REPORT.md
    python benchmarks/report.py --quick    # -> benchmarks/results/REPORT_quick.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fmt_bytes  # noqa: E402

TARGETS = {"minesweeper": 90.7, "tolokers": 83.3, "actor": 38.0}
VARIANTS = [("spexphormer", "Spexphormer"), ("ase", "ASE alone (stage 1)"), ("exphormer", "Exphormer (full batch)"),
            ("uniform", "ablation: uniform sampler"), ("topk", "ablation: top-k sampler"),
            ("noanneal", "ablation: no temperature annealing"),
            ("scaled", "option: stage-2 logits scaled by 1/sqrt(d)"),
            ("export_best", "option: scores exported at the best epoch's temperature")]


def _load(folder: Path, name: str):
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def md_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def machine_line(m: dict) -> str:
    if not m:
        return "unknown machine"
    return (f"{m.get('cpu', m.get('processor', '?'))}, {m.get('cpu_count', '?')} cores, {m.get('memory_gib', '?')} GiB, "
            f"device {m.get('device', 'cpu')}, {m.get('threads_per_job', 1)} thread per job, torch {m.get('torch', '?')}, "
            f"load average when written {m.get('load_avg_at_write', '?')}")


def seeds_text(seeds: list) -> str:
    if not seeds:
        return "-"
    return f"{len(seeds)} ({', '.join(map(str, seeds))})"


def accuracy_section(acc: dict) -> tuple[str, list]:
    out, checks = [], []
    out.append("## 1. Accuracy (`benchmarks/accuracy.py`)\n")
    out.append(f"Machine: {machine_line(acc['machine'])}.\n")
    if acc.get("run_history"):
        out.append("Runs (jobs whose output existed were reused): " + "; ".join(
            f"{h['started_utc']} UTC, {h['wall_seconds']:.0f} s wall, {h['workers']} worker(s), "
            f"{h.get('jobs_count', len(h['jobs_run']))} job(s)" + (f" [{h['note']}]" if h.get("note") else "") for h in acc["run_history"]) + ".\n")
    out.append("Test metric in % (mean ± population std over the seeds listed; the ASE row is one estimator run). "
               "Peak memory = the child process's peak RSS during the stage (`StageMeter`); stage-1 figures of the "
               "Spexphormer, uniform and top-k rows are the one shared stage 1 (same scores file). s/epoch = stage 2 "
               "(training + evaluation) or, for the ASE row, stage 1. Edge ratio = mean k / mean augmented in-degree.\n")
    for ds, r in acc["datasets"].items():
        ep = r["epochs"]
        plan = r.get("plan", {})
        out.append(f"### {ds}\n")
        out.append(f"Split: **{r['split']}**; metric {r['metric']}; epochs: stage 1 {ep['stage1']} (preset "
                   f"{ep['preset_stage1']}), stage 2 {ep['stage2']} (preset {ep['preset_stage2']}), Exphormer "
                   f"{ep['exphormer']}.\n")
        rows = []
        for key, label in VARIANTS:
            row = r["rows"].get(key)
            if row is None:
                continue
            if "same_as" in row:
                rows.append([label, "same as Spexphormer", "-", "-", "-", "-", "-", "-", "-", row.get("note", "")])
                continue
            if "test_mean" not in row:
                rows.append([label, f"not run ({row.get('status', 'missing')})"] + ["-"] * 7 + [""])
                continue
            note = row.get("note", "")
            if key == "ase":
                note = "one run, stage1.seed 0"
            if row.get("stage1_shared"):
                note = (note + "; " if note else "") + "stage 1 shared"
            rows.append([
                label, f"**{row['test_mean']:.2f} ± {row['test_std']:.2f}**", seeds_text(row.get("seeds")),
                fmt_bytes(row.get("stage1_peak_bytes")),
                f"{row['stage1_seconds']:.0f}" if row.get("stage1_seconds") is not None else "-",
                fmt_bytes(row.get("stage2_peak_bytes")),
                f"{row['stage2_seconds']:.0f}" if row.get("stage2_seconds") is not None else "-",
                f"{row['seconds_per_epoch']:.2f}", f"{row['edge_ratio']:.3f}",
                "; ".join(x for x in ((f"{row['epochs']} epochs" if row.get("epochs") else ""), note) if x)])
        out.append(md_table(["row", "test %", "seeds", "stage-1 peak", "stage-1 s", "stage-2 / Exphormer peak",
                             "stage-2 / Exphormer s (all seeds)", "s/epoch", "edge ratio", "note"], rows))
        if r.get("stage2_to_exphormer_peak_ratio"):
            out.append(f"\nStage-2 peak / full-batch Exphormer peak (same width {32} and heads): "
                       f"**{r['stage2_to_exphormer_peak_ratio']:.3f}**"
                       + (f"; net of the RSS of the interpreter and torch after import (same in both processes): "
                          f"**{r['stage2_to_exphormer_peak_ratio_net_of_imports']:.3f}**"
                          if r.get("stage2_to_exphormer_peak_ratio_net_of_imports") else "") + ".")
        cut = []
        n_sp = len(r["rows"].get("spexphormer", {}).get("seeds") or [])
        if 0 < n_sp < 5:
            cut.append(f"Spexphormer {n_sp} seeds instead of 5")
        for k in ("uniform", "topk", "noanneal"):
            if plan.get(k) and plan[k] < 5:
                cut.append(f"{k} {plan[k]} seeds")
        if plan.get("exphormer") and plan["exphormer"] < 5:
            cut.append(f"Exphormer {plan['exphormer']} seed(s)")
        if ep["exphormer"] < ep["preset_stage2"]:
            cut.append(f"Exphormer {ep['exphormer']} of {ep['preset_stage2']} epochs (accuracy from a shortened run)")
        if ep.get("ablations_stage2", ep["stage2"]) < ep["preset_stage2"] and ep["stage2"] == ep["preset_stage2"]:
            cut.append(f"ablation rows (uniform, top-k, no annealing) stage 2 {ep['ablations_stage2']} of "
                       f"{ep['preset_stage2']} epochs")
        if ep["stage1"] < ep["preset_stage1"] or ep["stage2"] < ep["preset_stage2"]:
            cut.append(f"epochs cut to stage 1 {ep['stage1']}, stage 2 {ep['stage2']}")
        if cut:
            out.append("\nCut from the protocol (5 seeds, preset epochs): " + "; ".join(cut) + ".")
        out.append("")
        sp = r["rows"].get("spexphormer", {})
        if ds in TARGETS and "test_mean" in sp:
            checks.append((f"{ds} Spexphormer test {r['metric']} ≥ {TARGETS[ds]}",
                           f"{sp['test_mean']:.2f} ± {sp['test_std']:.2f} ({len(sp['seeds'])} seeds)",
                           sp["test_mean"] >= TARGETS[ds]))
        if ds == "tolokers" and r.get("stage2_to_exphormer_peak_ratio"):
            ratio = r["stage2_to_exphormer_peak_ratio"]
            net = r.get("stage2_to_exphormer_peak_ratio_net_of_imports")
            checks.append(("Tolokers stage-2 peak ≤ 1/5 of full-batch Exphormer",
                           f"{ratio:.3f} of process peak RSS" + (f"; {net:.3f} net of import RSS" if net else ""),
                           ratio <= 0.2))
    if acc.get("png"):
        out.append(f"![accuracy]({acc['png']})\n")
    return "\n".join(out), checks


def scaling_section(sc: dict) -> tuple[str, list]:
    out, checks = ["## 2. Scaling (`benchmarks/scaling.py`)\n"], []
    out.append(f"Machine: {machine_line(sc['machine'])}. Graph: {sc['graph']}. Settings: "
               f"`{json.dumps(sc['settings'])}`. Each part in a fresh child process, one at a time.\n")
    rows = []
    for r in sc["sizes"]:
        for part in ("stage1", "exphormer", "stage2", "stage2-control"):
            x = r.get(part)
            if x is None:
                continue
            if "peak_bytes" not in x:
                rows.append([f"{r['nodes']:,}", part, "-", "-", "-", "-", x.get("skipped") or x.get("failed") or "missing"])
                continue
            note = ""
            if part.startswith("stage2"):
                note = (f"B={x['batch_size']}, ks {','.join(map(str, x['ks']))}; {x['steps']} of {x['steps_per_epoch']} "
                        f"steps{' → epoch time projected from s/step' if not x['full_epoch'] else ' (full epoch)'}; "
                        f"{x['seconds_per_step']:.2f} s/step; mean input rows (S0) {x['mean_input_rows']:,.0f} "
                        f"(bound B·Π(k+1) = {x['receptive_field_bound']:,}); "
                        f"sampling all layers {x['sampling_seconds']:.1f} s")
            elif part == "stage1":
                note = f"{x['epochs']} epochs; augmentation {x['augment_seconds']:.1f} s"
            else:
                note = f"{x['epochs']} epochs"
            rows.append([f"{r['nodes']:,}", part, f"{x.get('augmented_edges', 0):,}", f"{x['seconds_per_epoch']:.2f}",
                         fmt_bytes(x["peak_bytes"]), fmt_bytes(x["working_bytes"]), note])
    out.append(md_table(["nodes", "part", "augmented edges", "s/epoch", "peak RSS", "working (peak − held)", "note"], rows))
    out.append("\nLog–log slopes (growth exponents, least squares over the measured sizes):\n")
    er = [[p, f"{e['peak_memory']:.2f}" if e.get("peak_memory") is not None else "-",
           f"{e['working_memory']:.2f}" if e.get("working_memory") is not None else "-",
           f"{e['seconds_per_epoch']:.2f}" if e.get("seconds_per_epoch") is not None else "-",
           ", ".join(f"{n:,}" for n in e["points"])] for p, e in sc["exponents"].items()]
    out.append(md_table(["part", "peak memory", "working memory", "s/epoch", "sizes"], er))
    for part, w in sc.get("working_memory_100k_to_1M", {}).items():
        checks.append((f"{part}: working memory change 100k → 1M < 10%",
                       f"{fmt_bytes(w['working_100k_bytes'])} → {fmt_bytes(w['working_1M_bytes'])} "
                       f"({w['change_percent']:+.1f}%)", w["target_met"]))
    if sc.get("png"):
        out.append(f"\n![scaling]({sc['png']})\n")
    return "\n".join(out), checks


def sampler_section(samplers: dict) -> str:
    out = ["## 3. Sampler and preprocessing throughput (`benchmarks/sampler.py`)\n",
           "Vectorised grouping by destination and numba reservoir sampling vs the research code's per-node "
           "Python loops (the loops run on a subset and are scaled linearly; see the script's docstring).\n"]
    rows = []
    for name, s in samplers.items():
        rows.append([name, f"{s['nodes']:,}", f"{s['edges']:,}", s["k"], f"{s['group_vectorised_s']:.3f}",
                     f"{s['group_loop_s']:.1f}", f"{s['group_speedup']:.0f}×", f"{s['vectorised_s']:.3f}",
                     f"{s['vectorised_first_call_s']:.2f}", f"{s['loop_s']:.1f}", f"{s['speedup']:.0f}×",
                     f"numba {s['threads']} thr, torch {s['torch_threads']} thr, load {s['load_before']}"])
    out.append(md_table(["file", "nodes", "edges", "k", "group vec s", "group loop s", "group speedup",
                         "sample vec s (warm)", "first call s (JIT)", "sample loop s", "sample speedup", "threads / load"],
                        rows))
    return "\n".join(out) + "\n"


def batch_section(bs: dict) -> str:
    out = ["## 4. Stage 2 vs batch size (`benchmarks/batch_size.py`)\n",
           f"Machine: {machine_line(bs['machine'])}. Dataset {bs['dataset']} ({bs['nodes']:,} nodes), split "
           f"**{bs['split']}**; {bs['protocol']['run']} (paper: {bs['protocol']['paper']}). Memory = child peak RSS "
           f"during stage 2; working = peak − RSS held at its start.\n"]
    rows = []
    for r in bs["rows"]:
        if "test_mean" not in r:
            rows.append([f"{r['batch_size']:,}", r.get("status", "missing"), "-", "-", "-", "-"])
            continue
        rows.append([f"{r['batch_size']:,}", f"{r['test_mean']:.2f} ± {r['test_std']:.2f}", seeds_text(r["seeds"]),
                     f"{r['seconds_per_epoch']:.2f}", fmt_bytes(r["stage2_peak_bytes"]), fmt_bytes(r["stage2_working_bytes"])])
    out.append(md_table(["batch (core nodes)", "test ROC-AUC %", "seeds", "s/epoch", "peak RSS", "working"], rows))
    if bs.get("png"):
        out.append(f"\n![batch size]({bs['png']})\n")
    return "\n".join(out)


def attention_section(att: dict) -> str:
    out = ["## 5. Attention primitives (`benchmarks/attention.py`, existing results file)\n"]
    meta = att.get("meta", {})
    a = meta.get("args", {})
    out.append(f"One forward + backward on a random graph of {a.get('nodes', '?'):,} nodes and {a.get('edges', '?'):,} "
               f"augmented edges (Tolokers size), {a.get('threads', '?')} thread, device {a.get('device', '?')}, "
               f"torch {meta.get('torch', '?')}.\n")
    rows = []
    for c in att.get("results", []):
        rows.append([c.get("case"), c.get("module"), c.get("dim"), c.get("heads"), c.get("k") or "-",
                     f"{c['edges']:,}", f"{c['median_s']:.3f}", f"{c['peak_mem_mib']:.0f} MiB",
                     f"{c.get('floats_per_edge_at_peak', float('nan')):.1f}"])
    out.append(md_table(["case", "module", "dim", "heads", "k", "edges / rows", "median s", "peak extra",
                         "floats per edge"], rows))
    return "\n".join(out) + "\n"


def memory_section(mem: dict) -> tuple[str, list]:
    out = ["## 6. Stage 2 against full-batch Exphormer at equal width (`benchmarks/memory.py`)\n",
           f"{mem['title']}. Each model in a fresh process; peak = the process's peak RSS during the stage, "
           "working = that peak minus the RSS held when the stage started.\n"]
    rows = mem["rows"]
    out.append(md_table(list(rows[0]), [list(r.values()) for r in rows]))
    ratios = [float(r["working ratio"]) for r in rows[1:]]
    checks = [(f"{mem['dataset']} stage-2 working memory ≤ 1/5 of full-batch Exphormer (memory.py)",
               f"{min(ratios):.3f}–{max(ratios):.3f} of Exphormer's", max(ratios) <= 0.2)] if ratios else []
    return "\n".join(out) + "\n", checks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--quick", action="store_true", help="read *_quick.json, write REPORT_quick.md")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    folder = Path(args.results)
    sfx = "_quick" if args.quick else ""
    out_path = Path(args.out) if args.out else folder / f"REPORT{sfx}.md"
    parts = ["# Spexphormer benchmark report" + (" — SMOKE NUMBERS (--quick)" if args.quick else ""), ""]
    if args.quick:
        parts.append("**These are smoke numbers from `run_all.py --quick`: tiny epochs and sizes, to check that the "
                     "scripts run end to end. They say nothing about accuracy or scaling.**\n")
    parts.append("Generated by `benchmarks/report.py` from the JSON files in this folder only. Every measured job ran "
                 "in its own child process with one PyTorch/numba thread and `THP_MEM_ALLOC_ENABLE=1`, at most two "
                 "at a time, on a shared 2-core machine (other processes may have been running: the load average is "
                 "recorded with each file).\n")
    parts.append("**GPU:** no GPU was available in this session, so no GPU runs were made. The scripts accept "
                 "`--device cuda` (memory then is `torch.cuda.max_memory_allocated` through `StageMeter`).\n")
    checks = []
    acc = _load(folder, f"accuracy{sfx}.json")
    sc = _load(folder, f"scaling{sfx}.json")
    bs = _load(folder, f"batch_size{sfx}.json")
    samplers = {n: d for n in (["sampler_quick.json"] if args.quick else ["sampler_100k.json", "sampler_1M.json"])
                if (d := _load(folder, n))}
    att = _load(folder, "attention.json")
    mem = _load(folder, "memory_quick.json" if args.quick else "memory_tolokers.json")
    body = []
    if acc:
        text, c = accuracy_section(acc)
        body.append(text), checks.extend(c)
    if sc:
        text, c = scaling_section(sc)
        body.append(text), checks.extend(c)
    if samplers:
        body.append(sampler_section(samplers))
    if bs:
        body.append(batch_section(bs))
    if att and not args.quick:
        try:
            body.append(attention_section(att))
        except Exception:  # noqa: BLE001 - a file of another layout: just link it
            body.append("## 5. Attention primitives\n\nSee `attention.json`.\n")
    if mem:
        text, c = memory_section(mem)
        body.append(text), checks.extend(c)
    if checks:
        parts.append("## Targets" + (" (smoke numbers: NOT a measurement of the targets)" if args.quick else "") + "\n")
        parts.append(md_table(["target", "measured", "met?"], [[t, m, "**yes**" if ok else "**no**"]
                                                              for t, m, ok in checks]))
        parts.append("")
    parts += body
    missing = [n for n, d in (("accuracy", acc), ("scaling", sc), ("batch_size", bs)) if not d]
    if missing:
        parts.append(f"\nNot present (not run): {', '.join(missing)}.\n")
    out_path.write_text("\n".join(parts) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
