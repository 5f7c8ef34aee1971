"""The ``spexphormer`` command line: argument parsing only, every action is a library call.

Errors a user can cause end as one line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from spexphormer import __version__
from spexphormer.errors import SpexphormerError

EPILOG = """examples:
  spexphormer datasets
  spexphormer info --dataset tolokers
  spexphormer run --dataset minesweeper --seeds 5 --out runs/minesweeper
  spexphormer estimate --dataset tolokers --set stage1.epochs=50
  spexphormer train --dataset minesweeper --scores runs/minesweeper/scores-<key>.pt
  spexphormer train --dataset minesweeper --model exphormer --seeds 1
  spexphormer run --dataset minesweeper --model local-attention
  spexphormer predict --checkpoint runs/minesweeper/seed0/model.pt --out predictions.csv
  spexphormer predict --checkpoint runs/mygraph/seed0/model.pt --data grown.pt --out new-nodes.csv
  spexphormer analyze consistency --dataset actor --widths 4,8,16,32,64
  spexphormer config --dataset tolokers --set stage2.batch_size=2000
  spexphormer config --dataset tolokers --format yaml > tolokers.yaml
  spexphormer run --dataset minesweeper --nproc 2
  torchrun --nproc-per-node 2 -m spexphormer run --dataset minesweeper
"""


def _graph_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--dataset", metavar="NAME", help="a named dataset (see `spexphormer datasets`)")
    src.add_argument("--data", metavar="PATH", help="your own graph: Platonov .npz, gnn-benchmark .npz, a "
                                                    "torch.save'd PyG Data (.pt), or a folder of .npy files "
                                                    "(x, y, edge_index; memory-mapped)")
    p.add_argument("--data-root", metavar="DIR", help="dataset folder (default: $SPEXPHORMER_DATA_ROOT or the per-user cache)")
    p.add_argument("--split-index", type=int, default=None, metavar="I",
                   help="which official split (mask) to use, default 0")
    p.add_argument("--symmetrize", action=argparse.BooleanOptionalAction, default=None,
                   help="add reverse edges (default: yes for --data files; named datasets follow their "
                        "reference protocol: pokec and actor-reference stay directed)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="let this --data .pt file unpickle Python objects beyond PyG's Data (that can run "
                        "code from the file: only for a file you trust); without it such a file is refused")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set stage2.batch_size=5000 (repeatable; "
                        "`spexphormer config` lists the keys)")
    p.add_argument("--config", metavar="FILE", help="a YAML (.yaml/.yml) or JSON file of {section: {key: value}} "
                                                    "values, e.g. from `spexphormer config --format yaml`")
    p.add_argument("--preset", metavar="NAME", help="use another dataset's preset (default: the dataset's own)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda[:N]")


def _model_arg(p: argparse.ArgumentParser, exphormer: bool = False) -> None:
    full = ", or exphormer (the full-batch baseline)" if exphormer else ""
    p.add_argument("--model", default=None, metavar="NAME",
                   help="the wide model and its presets: spexphormer (the paper's; the default for --dataset) or "
                        "local-attention (sparse attention plus a local GNN branch on the sampled graph edges; "
                        f"the default for --data){full}")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="number of seeds (default: preset, 5)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<dataset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes on this machine (gloo on CPU, NCCL on GPUs), as "
                        "`torchrun --nproc-per-node N -m spexphormer ...` would start (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: finished seeds are kept, interrupted training "
                        "continues from its last snapshot (every run.checkpoint_every epochs; under --nproc/torchrun with as "
                        "many processes as before)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spexphormer", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Spexphormer: a narrow network learns where attention goes on the expander-augmented "
                    "graph (stage 1); its scores pick a few edges per node per layer, and a wide graph "
                    "transformer trains on those sparse graphs in mini-batches (stage 2).")
    parser.add_argument("--version", action="version", version=f"spexphormer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list the named datasets and whether they are available locally")
    p.add_argument("--data-root", metavar="DIR")

    p = sub.add_parser("info", help="print one graph's size, split and metric")
    _graph_args(p)

    p = sub.add_parser("config", help="print the resolved configuration (preset + overrides)")
    _graph_args(p, required=False)
    _config_args(p)
    _model_arg(p)
    p.add_argument("--format", choices=["text", "json", "yaml"], default="text",
                   help="text (default), or a file that --config reads back: json or yaml")

    p = sub.add_parser("estimate", help="stage 1: train the attention score estimator, write a scores file")
    _graph_args(p), _config_args(p), _run_args(p)

    p = sub.add_parser("train", help="stage 2 from a scores file, or the full-batch Exphormer baseline")
    _graph_args(p), _config_args(p), _run_args(p)
    _model_arg(p, exphormer=True)
    p.add_argument("--scores", metavar="FILE", help="scores file from `spexphormer estimate` (the sampled models)")

    p = sub.add_parser("run", help="both stages end to end, over several seeds; writes results.json")
    _graph_args(p), _config_args(p), _run_args(p)
    _model_arg(p)
    p.add_argument("--scores", metavar="FILE", help="reuse this scores file instead of running stage 1")

    p = sub.add_parser("predict", help="predictions of a trained checkpoint for all or some nodes; on a graph "
                                       "that has grown (--data), for its new nodes")
    p.add_argument("--checkpoint", required=True, metavar="FILE")
    _graph_args(p, required=False)
    p.add_argument("--scores", metavar="FILE", help="scores file (default: the one the checkpoint was trained on)")
    p.add_argument("--nodes", metavar="IDS", help="comma-separated node ids, or @FILE with one id per line")
    p.add_argument("--out", required=True, metavar="FILE", help="CSV file to write")
    p.add_argument("--samples", type=int, default=None, metavar="S",
                   help="average the predicted distributions over S sampled graphs (default: the checkpoint's "
                        "stage2.eval_samples)")
    p.add_argument("--device", default=None)

    p = sub.add_parser("analyze", help="analyses of attention scores")
    analyses = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    c = analyses.add_parser("consistency", help="do narrow and wide networks attend alike? (energy distance, "
                                                "top-k agreement, with and without expander edges)")
    _graph_args(c), _config_args(c)
    c.add_argument("--widths", default="4,8,16,32,64", help="comma-separated widths (default 4,8,16,32,64)")
    c.add_argument("--epochs", type=int, default=None, help="epochs per network (default: stage-1 preset)")
    c.add_argument("--out", metavar="DIR", help="output folder (default: runs/<dataset>/consistency)")
    c.add_argument("--quiet", action="store_true")
    return parser


# ---------------------------------------------------------------------------------------------

def _load_graph(args, split_index: int, required: bool = True):
    """The graph named by --dataset/--data with split ``split_index`` (run.split_index where a
    command has a config, else --split-index)."""
    from spexphormer.data import load_graph
    if not args.dataset and not args.data:
        if required:
            raise SpexphormerError("give --dataset NAME or --data PATH")
        return None
    from spexphormer.distributed.machine_share import shared_graph
    # under torchrun: local rank 0 of each machine loads it, every local rank maps that one copy
    return shared_graph(lambda: load_graph(dataset=args.dataset, path=args.data, root=args.data_root,
                                           split_index=split_index, symmetrize=args.symmetrize,
                                           trust_pickle=args.trust_pickle))


def _config(args, num_nodes: int | None = None):
    """Preset (of --preset, else of --dataset, else by ``num_nodes`` for a graph of your own) +
    --config file + --set overrides + flags."""
    from spexphormer.presets import PRESETS, preset, preset_for_size
    from spexphormer.config_files import apply_config_file
    from spexphormer.errors import ConfigError
    from spexphormer.distributed.world import default_threads
    from spexphormer.utils.device import set_threads
    if args.preset and args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; presets: {', '.join(PRESETS)}")
    name = args.preset
    if not name and args.dataset:
        from spexphormer.data.registry import get_spec
        name = get_spec(args.dataset).name  # an unknown name is an error; an alias gets its dataset's preset
    model = _model(args)
    preset_model = "spexphormer" if model == "exphormer" else model
    cfg = preset(name, preset_model) if num_nodes is None else preset_for_size(num_nodes, preset_model)
    if args.config:
        cfg = apply_config_file(cfg, args.config)
    cfg = cfg.override(args.overrides)
    extra: dict = {}
    if getattr(args, "seeds", None) is not None:
        extra["run.seeds"] = args.seeds
    if getattr(args, "split_index", None) is not None:
        extra["run.split_index"] = args.split_index
    if getattr(args, "device", None):
        extra["run.device"] = args.device
    cfg = cfg.override(extra) if extra else cfg
    set_threads(cfg.run.threads or default_threads())  # under torchrun: the cores shared among the ranks
    return cfg


def _large_own_graph(args, data) -> int | None:
    """The node count of a graph of your own (--data, no --preset) that gets the large-graph
    preset (:func:`~spexphormer.presets.preset_for_size`), else None."""
    from spexphormer.presets import LARGE_GRAPH_NODES
    if data is None or not getattr(args, "data", None) or args.preset or data.num_nodes < LARGE_GRAPH_NODES:
        return None
    return data.num_nodes


def _config_and_graph(args):
    """The configuration and the graph it runs on: a graph of your own with at least
    ``LARGE_GRAPH_NODES`` nodes gets the large-graph preset (the config is built again from it,
    with the same file and overrides)."""
    cfg = _config(args)
    data = _load_graph(args, cfg.run.split_index)
    large = _large_own_graph(args, data)
    return (cfg if large is None else _config(args, num_nodes=large)), data


def _model(args) -> str:
    """--model, else the default for the graph: a graph of your own (--data, no --preset) gets the
    local-attention model, a named dataset the paper's. Commands without --model (estimate,
    analyze) keep the paper's presets."""
    from spexphormer.presets import model_for
    if not hasattr(args, "model"):
        return "spexphormer"
    return model_for(args.model, own_graph=bool(args.data) and not args.preset)


def _say_model(args, cfg, data=None) -> None:
    """One line on stdout: which wide model runs, with which preset, and why."""
    from spexphormer.presets import LARGE_GRAPH_NODES, LARGE_GRAPH_PRESET, describe_preset
    if not _is_main():
        return
    model = cfg.stage2.model
    if model != _model(args):
        print(f"model: {model} (stage2.model of the configuration)", flush=True)
        return
    why = "" if args.model else (" (the default for a graph of your own; --model spexphormer for the paper's)"
                                 if args.data and not args.preset else " (the default for a named dataset)")
    name = args.preset or (args.dataset and _dataset_name(args.dataset))
    described = describe_preset(name, model)
    if _large_own_graph(args, data) is not None:
        described = f"{LARGE_GRAPH_PRESET} (the large-graph preset: {LARGE_GRAPH_NODES:,}+ nodes)"
    print(f"model: {model}{why} · preset: {described}", flush=True)


def _dataset_name(dataset: str) -> str:
    from spexphormer.data.registry import get_spec
    return get_spec(dataset).name


def _progress(args) -> bool:
    from spexphormer.distributed import world
    return not args.quiet and world().is_main


def _world_size() -> int:
    from spexphormer.distributed import world
    return world().size


def _is_main() -> bool:
    from spexphormer.distributed import world
    return world().is_main


def _info(data):
    from spexphormer.data import graph_info
    return graph_info(data)


def _out_dir(args, data, suffix: str = "") -> Path:
    return Path(args.out) if args.out else Path("runs") / (_info(data).name + suffix)


def cmd_datasets(args) -> None:
    from spexphormer.data import list_datasets, resolve_root
    from spexphormer.utils.table import format_table
    rows = [{"name": d["name"], "nodes": f"{d['nodes']:,}" if d.get("nodes") else "?",
             "edges": f"{d['edges']:,}" if d.get("edges") else "?", "features": d.get("features", "?"),
             "classes": d.get("classes", "?"), "metric": d["metric"], "split": d["split"],
             "local": "yes" if d["available"] else "no"} for d in list_datasets(args.data_root)]
    print(format_table(rows, title=f"datasets (root: {resolve_root(args.data_root)})"))


def cmd_info(args) -> None:
    from spexphormer.data import describe
    from spexphormer.utils.table import format_table
    info = describe(_load_graph(args, args.split_index or 0))
    print(format_table([{"property": k, "value": f"{v:,}" if isinstance(v, int) else v} for k, v in info.items()]))


def cmd_config(args) -> None:
    from spexphormer.config_files import dump_config
    # a graph of your own is read to know its size (the large-graph preset from 1M nodes on)
    cfg = _config_and_graph(args)[0] if getattr(args, "data", None) and not args.preset else _config(args)
    print(dump_config(cfg, args.format))


def cmd_estimate(args) -> None:
    from spexphormer.pipeline.run import obtain_scores
    from spexphormer.utils.device import resolve_device
    from spexphormer.utils.table import format_table, human_bytes
    cfg, data = _config_and_graph(args)
    out = _out_dir(args, data)
    _, info = obtain_scores(data, cfg, out, resolve_device(cfg.run.device), progress=_progress(args),
                            resume=args.resume)
    if not _is_main():
        return
    if info.get("reused"):
        print(f"scores for this graph and config already exist: {info['reused']}")
        return
    print(format_table([{"scores file": info["scores_file"], "seconds": f"{info['seconds']:.1f}",
                         "peak memory": human_bytes(info["peak_memory_bytes"]), "metric": _info(data).metric,
                         "val": f"{100 * info['val']:.2f}", "test": f"{100 * info['test']:.2f}",
                         "best epoch": info["best_epoch"]}], title=f"stage 1 on {_info(data).name} ({_info(data).split})"))


def cmd_train(args) -> None:
    from spexphormer.pipeline.run import results_table, run, run_exphormer
    from spexphormer.utils.device import resolve_device
    if args.model == "exphormer" and args.scores:
        raise SpexphormerError("--scores is for the sampled models; Exphormer trains on the full graph")
    if args.model != "exphormer" and not args.scores:
        raise SpexphormerError("stage 2 needs --scores FILE (from `spexphormer estimate`); "
                               "`spexphormer run` does both stages")
    cfg, data = _config_and_graph(args)
    device = resolve_device(cfg.run.device)
    if args.model != "exphormer":
        _say_model(args, cfg, data)
    if args.model == "exphormer":
        if _world_size() > 1:
            raise SpexphormerError("the full-batch Exphormer baseline runs in one process; leave out --nproc")
        results = run_exphormer(data, cfg, _out_dir(args, data, "-exphormer"), device, progress=_progress(args),
                                resume=args.resume)
    else:
        results = run(data, cfg, _out_dir(args, data), device, scores_path=args.scores, progress=_progress(args),
                      resume=args.resume)
    if _is_main():
        print(results_table(results))


def cmd_run(args) -> None:
    from spexphormer.pipeline.run import results_table, run
    from spexphormer.utils.device import resolve_device
    cfg, data = _config_and_graph(args)
    out = _out_dir(args, data)
    _say_model(args, cfg, data)
    results = run(data, cfg, out, resolve_device(cfg.run.device), scores_path=args.scores,
                  progress=_progress(args), resume=args.resume)
    if _is_main():
        print(results_table(results))
        print(f"results: {out / 'results.json'}")


def cmd_predict(args) -> None:
    from spexphormer.pipeline.predict import predict, read_node_ids, write_predictions
    from spexphormer.utils.device import resolve_device
    if args.trust_pickle and not args.data:
        raise SpexphormerError("--trust-pickle applies to the file given with --data only (a path recorded in a "
                               "checkpoint is never unpickled)")
    nodes = read_node_ids(args.nodes) if args.nodes else None
    data = _load_graph(args, args.split_index or 0, required=False)
    result = predict(args.checkpoint, data=data, data_root=args.data_root, scores_path=args.scores,
                     nodes=nodes, device=resolve_device(args.device or "auto"), samples=args.samples)
    path = write_predictions(result, args.out)
    print(f"wrote predictions of {len(result['nodes']):,} nodes to {path}")


def cmd_analyze(args) -> None:
    from spexphormer.analysis.consistency import consistency_table, run_consistency
    cfg, data = _config_and_graph(args)
    try:
        widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        raise SpexphormerError(f"--widths must be comma-separated integers, got {args.widths!r}") from None
    out = Path(args.out) if args.out else Path("runs") / _info(data).name / "consistency"
    results = run_consistency(data, cfg, widths, out, epochs=args.epochs, progress=_progress(args))
    print(consistency_table(results))
    print(f"results: {out}")


COMMANDS = {"datasets": cmd_datasets, "info": cmd_info, "config": cmd_config, "estimate": cmd_estimate,
            "train": cmd_train, "run": cmd_run, "predict": cmd_predict, "analyze": cmd_analyze}


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _launch_or_join(args, argv: list[str]) -> int | None:
    """``--nproc N``: start N ranks of this command and return the job's status. Inside a rank
    (torchrun's or ours): join the process group and return None."""
    nproc = getattr(args, "nproc", 1)
    if nproc < 1:
        raise SpexphormerError(f"--nproc must be at least 1, got {nproc}")
    from spexphormer.utils.device import launched
    if launched():  # a rank of torchrun or of --nproc
        from spexphormer.distributed import init_from_env
        if nproc > 1:
            raise SpexphormerError("--nproc starts its own processes; under torchrun, leave it out")
        if not init_from_env().is_main:  # rank 0 alone speaks: the others' warnings would repeat its own
            warnings.simplefilter("ignore")
        return None
    if nproc > 1:
        from spexphormer.distributed.launch import launch_local
        _config(args)  # a bad --set is reported once, before any process starts
        if getattr(args, "model", None) == "exphormer":
            raise SpexphormerError("the full-batch Exphormer baseline runs in one process; leave out --nproc")
        return launch_local(nproc, _without_nproc(argv))
    return None


def _report(message: str) -> None:
    from spexphormer.distributed.launch import report_error
    report_error(message)


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


PATH_ARGS = ("out", "data", "data_root", "scores", "checkpoint", "config", "nodes")


def _check_paths(args) -> None:
    """Paths checked before any work: not valid UTF-8 (they are recorded in files as text); and
    ``predict --out`` must not name a link or a device (it is never written through or replaced)."""
    from spexphormer.utils.io import check_path_text, refuse_special
    for name in PATH_ARGS:
        if getattr(args, name, None):
            check_path_text(getattr(args, name), f"--{name.replace('_', '-')}")
    if args.command == "predict":
        refuse_special(args.out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        _check_paths(args)
        status = _launch_or_join(args, argv)
        if status is not None:
            return status
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line  # one line each, like errors
            COMMANDS[args.command](args)
    except SpexphormerError as exc:
        _report(str(exc))
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `spexphormer config | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # e.g. an output folder that cannot be written
        _report(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from spexphormer.distributed.launch import report_crash, report_rank_failure
        if report_rank_failure(exc):  # another rank failed first: it reports the cause
            return 1
        report_crash(exc)  # under --nproc: one line for the launcher; the traceback follows
        raise
    finally:
        if "spexphormer.distributed.world" in sys.modules:  # leave the process group, if joined
            sys.modules["spexphormer.distributed.world"].shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
