"""Run every benchmark that fits this machine, then render ``results/REPORT.md``.

Full mode (about an hour on 2 CPU cores, one thread per job, at most two jobs at once):

1. ``accuracy.py`` (two child processes at a time): cora, actor, minesweeper, tolokers;
2. then two lanes side by side: ``scaling.py`` (10k, 100k, 1M nodes, one part at a time) and
   ``sampler.py`` at 100k and 1M nodes followed by ``batch_size.py`` (one job at a time; it reuses
   the Tolokers scores file of step 1);
3. ``report.py``.

``--quick`` (under 5 minutes): the same pipeline on tiny epochs and sizes; its JSON files end in
``_quick`` and the report is ``results/REPORT_quick.md``, labelled as smoke numbers.

Usage::

    python benchmarks/run_all.py [--quick] [--data-root DIR] [--device cpu|cuda] [--skip accuracy,scaling]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, ROOT, child_env, python  # noqa: E402

PIECES = ["accuracy", "scaling", "sampler", "batch_size", "memory", "report"]


def lane(commands: list[list[str]], name: str) -> subprocess.Popen:
    """Run ``commands`` one after another in a background shell; returns the process."""
    script = " && ".join(" ".join(f"'{c}'" for c in cmd) for cmd in commands) if commands else "true"
    print(f"[{time.strftime('%H:%M:%S')}] lane {name}: {len(commands)} command(s)", flush=True)
    return subprocess.Popen(["bash", "-c", script], env=child_env(1), cwd=str(ROOT.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke run, under 5 minutes")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--skip", default="", help=f"comma-separated pieces to skip: {','.join(PIECES)}")
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    here = Path(__file__).resolve().parent
    py, q = python(), (["--quick"] if args.quick else [])
    dev = ["--device", args.device]
    start = time.time()
    failed = []

    if "accuracy" not in skip:
        rc = subprocess.call([py, str(here / "accuracy.py"), "--data-root", args.data_root, *q, *dev],
                             env=child_env(1), cwd=str(here.parent))
        failed += ["accuracy"] if rc else []

    lanes = []
    if "scaling" not in skip:
        lanes.append(("scaling", lane([[py, str(here / "scaling.py"), *q, *dev]], "scaling")))
    second = []
    if "sampler" not in skip:
        if args.quick:
            second.append([py, str(here / "sampler.py"), "--nodes", "20000", "--loop-nodes", "2000",
                           "--json", str(RESULTS / "sampler_quick.json")])
        else:
            for n, tag in ((100_000, "100k"), (1_000_000, "1M")):
                second.append([py, str(here / "sampler.py"), "--nodes", str(n), "--loop-nodes", "20000",
                               "--json", str(RESULTS / f"sampler_{tag}.json")])
    if "batch_size" not in skip:
        second.append([py, str(here / "batch_size.py"), "--data-root", args.data_root, "--workers", "1", *q, *dev])
    if "memory" not in skip:
        memory = [py, str(here / "memory.py"), "--data-root", args.data_root, *dev]
        if args.quick:
            memory += ["--dataset", "minesweeper", "--epochs", "1", "--batch-sizes", "100000",
                       "--json", str(RESULTS / "memory_quick.json")]
        second.append(memory)
    if second:
        lanes.append(("sampler+batch_size+memory", lane(second, "sampler+batch_size+memory")))
    for name, proc in lanes:
        if proc.wait():
            failed.append(name)

    if "report" not in skip:
        subprocess.call([py, str(here / "report.py"), *q], cwd=str(here.parent))
    print(f"[{time.strftime('%H:%M:%S')}] run_all done in {time.time() - start:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
