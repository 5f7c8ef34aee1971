"""Typed configuration: one dataclass per concern, one preset per dataset.

A :class:`Config` has four sections::

    graph   the augmented attention graph (expander degree, seed)
    stage1  the Attention Score Estimator (narrow, full batch) and its temperature schedule
    stage2  the wide Spexphormer network (sampling degrees, batches); the full-batch Exphormer
            baseline uses the same width, heads, depth and optimiser settings
    run     seeds, device, split index, threads, snapshot interval

Presets hold the hyper-parameters the paper's authors released with their code (see
``docs/method.md``). Any field can be
overridden with ``section.key=value`` strings (the CLI's ``--set``); an unknown section or key,
or a value of the wrong type, raises :class:`~spexphormer.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from spexphormer.errors import ConfigError, shown
from spexphormer.utils.memory import fits_in_memory, machine_memory
from spexphormer.nn.norms import NORM_KINDS as NORMS
from spexphormer.sampling.samplers import METHODS as SAMPLERS
from spexphormer.nn.local_attention import BRANCHES, LOCAL_KINDS
from spexphormer.nn.attention import HEAD_PAIRINGS
from spexphormer.nn.type_terms import TYPE_TERM_FORMS
from spexphormer.nn.wide import WIDE_MODELS
from spexphormer.train.schedule import WARMUP_RULES
EXPORT_TEMPERATURES = ("best", "reference")
#: The wide models of stage 2: the paper's, and the local-plus-attention model (docs/local-attention.md).
MODELS = tuple(WIDE_MODELS)


@dataclass
class GraphConfig:
    """The expander-augmented attention graph (docs/method.md §2)."""

    exp_deg: int = 15
    """Random Hamiltonian cycles of the expander; each node gets ``2 * exp_deg`` expander in-edges."""
    expander_candidates: int = 10
    """Redraw the expander until its spectral gap meets the Ramanujan bound, at most this many
    draws (then the best one is kept); 1 = no check. Checked only up to 100k nodes."""
    seed: int = 0
    """Seed of the expander's random cycles."""


@dataclass
class Stage1Config:
    """The Attention Score Estimator and its training (docs/method.md §3)."""

    hidden: int = 4
    """Width of the estimator (the method's narrow network)."""
    num_layers: int = 4
    """Attention layers; one score per augmented edge and layer is exported."""
    heads: int = 1
    """Attention heads per layer."""
    pre_layers: int = 1
    """Linear→BN→ReLU→row-wise L2-normalisation blocks after the input map (the reference encoder)."""
    type_terms: str = "embedding"
    """Parametrisation of the per-edge-type attention terms (``nn/type_terms.py``): ``embedding``,
    the authors' (a type embedding shared by the layers, through each layer's learned linear maps),
    or ``table`` (learned tables starting at 1 and 0; versions before 0.2)."""
    norm: str = "graph"
    """Normalisation after each layer: ``batch``, ``graph``, ``layer`` or ``none``."""
    dropout: float = 0.0
    """Dropout probability."""
    epochs: int = 100
    """Full-batch training epochs."""
    lr: float = 0.01
    """AdamW learning rate (the peak of the cosine schedule)."""
    weight_decay: float = 1e-3
    """AdamW weight decay."""
    warmup_epochs: int = 5
    """Epochs of linear learning-rate warm-up before the cosine decay."""
    warmup_rule: str = "reference"
    """How the learning rate rises during warm-up: ``reference`` (the authors' schedule),
    ``max(1e-6, epoch / warmup)``; ``shifted``, ``(epoch + 1) / (warmup + 1)`` (versions before 0.2)."""
    clip: float = 1.0
    """Gradient-norm clipping threshold."""
    temp_ratio: float = 0.99
    """Attention temperature ``T = max(temp_min, temp_ratio ** (epoch - temp_wait))``; 1.0 = no annealing."""
    temp_wait: int = 5
    """Epochs at ``T = 1`` before the temperature starts to fall."""
    temp_min: float = 0.05
    """The lowest temperature."""
    export_temperature: str = "reference"
    """Temperature of the score export: ``best`` = the schedule at the best-validation epoch;
    ``reference`` = the same once annealing has started, else the last temperature reached (the
    authors' code)."""
    seed: int = 0
    """Seed of the estimator's initialisation and dropout."""
    restarts: int = 1
    """Estimators trained from different initial weights (seeds ``seed``, ``seed + 7919``, ...);
    the one with the best validation metric exports the scores. 1 = the paper's single estimator;
    more replace an occasional collapsed estimator (attention all on expander and self-loop edges)
    at the cost of one stage 1 each."""


#: Seeds of the estimator's restarts are ``stage1.seed + RESTART_STRIDE * i`` (far apart, so that
#: seeds 0, 1, 2, ... of a run do not share restarts).
RESTART_STRIDE = 7919
#: The most restarts of the estimator (each is a full stage 1).
MAX_RESTARTS = 100
#: The most propagated copies of the features (``stage2.feature_hops``); each is N x (F + 1) floats.
MAX_FEATURE_HOPS = 8
#: The most sampled graphs averaged at evaluation (``stage2.eval_samples``): each is a full pass.
MAX_EVAL_SAMPLES = 64
#: Integer keys size tensors and seed generators: they stay within a C int (numpy's generators
#: take seeds below 2**32: with at most ``MAX_SEEDS`` seeds, ``run.seed + run.seeds`` stays there).
MAX_INT = 2**31 - 1
#: The most seeds of one run: each is a full training run with its own folder of files.
MAX_SEEDS = 10_000
#: The largest learning rate: far beyond any useful AdamW step, and small enough that its
#: arithmetic (lr x weight_decay, the warm-up's fractions) stays finite.
MAX_LR = 10.0


@dataclass
class Stage2Config:
    """The wide network trained on sampled, regular-degree graphs (docs/method.md §4)."""

    model: str = "spexphormer"
    """The wide model: ``spexphormer`` (the paper's) or ``local-attention`` (attention plus a
    local branch on the graph slots; docs/local-attention.md)."""
    hidden: int = 32
    """Width of the wide network."""
    heads: int = 4
    """Attention heads per layer."""
    num_layers: int = 4
    """Layers; one sampled graph per layer."""
    pre_layers: int = 1
    """Linear→BN→ReLU→row-wise L2-normalisation blocks after the input map (the reference encoder)."""
    scale_logits: bool = False
    """Multiply the attention logits by ``1/sqrt(d_head)``; the method and the authors' wide layer do not."""
    type_terms: str = "embedding"
    """Parametrisation of the per-edge-type attention terms (``nn/type_terms.py``): ``embedding``,
    the authors' (a type embedding shared by the layers, through each layer's learned linear maps),
    or ``table`` (learned tables starting at 1 and 0; versions before 0.2)."""
    head_pairing: str = "per-head"
    """How the paper model's attention pairs heads with neighbours: ``per-head`` (the method) or
    ``reference`` (the authors' wide layer, which views ``(n, k, H, d)`` as ``(n*H, k, d)``: a
    defect, kept to measure it; the same for one head)."""
    ks: tuple[int, ...] = (12, 5, 5, 5)
    """Sampled in-edges per node, one entry per layer. With per-type budgets (``graph_ks``,
    ``expander_ks``) it is derived: ``1 + graph_ks + expander_ks`` per layer, the table widths."""
    sampler: str = "reservoir"
    """How the ``k`` edges are drawn from the scores: ``reservoir`` (weighted, without
    replacement), ``uniform`` (ignores the scores) or ``topk`` (the largest scores)."""
    keep_graph_edges: bool = False
    """Graph edges take a node's first slots; the scores fill the rest."""
    resample_every: int = 1
    """Epochs between re-sampling the sparse graphs."""
    dropout: float = 0.2
    """Dropout probability."""
    norm: str = "batch"
    """Normalisation after each layer: ``batch``, ``graph``, ``layer`` or ``none``."""
    epochs: int = 80
    """Training epochs; the checkpoint is the best-validation epoch's."""
    lr: float = 0.01
    """AdamW learning rate (the peak of the cosine schedule)."""
    weight_decay: float = 1e-3
    """AdamW weight decay."""
    warmup_epochs: int = 5
    """Epochs of linear learning-rate warm-up before the cosine decay."""
    warmup_rule: str = "reference"
    """How the learning rate rises during warm-up: ``reference`` (the authors' schedule),
    ``max(1e-6, epoch / warmup)``; ``shifted``, ``(epoch + 1) / (warmup + 1)`` (versions before 0.2)."""
    clip: float = 1.0
    """Gradient-norm clipping threshold."""
    batch_size: int = 100_000
    """Core (training) nodes per step; the memory of a step depends on it and on ``ks``, not on the graph."""
    eval_batch_size: int = 0
    """Core nodes per evaluation batch; 0 = ``batch_size``."""
    eval_samples: int = 1
    """Sampled graphs whose predicted distributions are averaged when the best model is evaluated,
    and by ``predict`` (at most 64)."""
    recompute: bool = False
    """Activation checkpointing of the sampled wide models: recompute each layer in the backward
    pass (the same function, less memory, 1.3-1.6x the time per step)."""
    degree_feature: bool = False
    """Append ``log(1 + in-degree)``, computed once on the whole graph, to the input features."""
    feature_hops: int = 0
    """Append the features (with the degree column) propagated 1..``feature_hops`` hops over the
    whole graph, GCN-normalised (at most 8; ``graph/features.py``)."""
    graph_ks: tuple[int, ...] = ()
    """``local-attention`` only: graph-edge slots per node, one entry per layer (a node with fewer
    graph neighbours keeps all of them). With ``expander_ks`` it replaces ``ks``; () = sample ``ks``
    edges among all types by score, as the paper does."""
    expander_ks: tuple[int, ...] = ()
    """``local-attention`` only: expander-edge slots per node, one entry per layer."""
    local: str = "sage"
    """``local-attention`` only: the local branch, ``sage`` (mean), ``sum`` (GIN-like) or ``gated``
    (GatedGCN's gated mean)."""
    branches: str = "both"
    """``local-attention`` only: ``both``, or ``attention`` / ``local`` alone (ablations)."""
    jk: bool = False
    """``local-attention`` only: jumping knowledge, the head reads every layer's core rows."""
    input_dropout: float = 0.0
    """``local-attention`` only: dropout on the input features."""

    def slots(self) -> tuple[int, ...]:
        """Width of each layer's sampled neighbour table: ``1 + graph_ks + expander_ks`` per layer
        with per-type budgets (a self-loop, then the two blocks), else ``ks``."""
        if self.graph_ks:
            return tuple(1 + g + x for g, x in zip(self.graph_ks, self.expander_ks))
        return tuple(self.ks)


@dataclass
class RunConfig:
    """What to run: seeds, device, split."""

    seeds: int = 5
    """Stage-2 runs, one per seed; ``results.json`` reports their mean and spread."""
    seed: int = 0
    """The first seed; the seeds are ``seed, seed + 1, ...``."""
    split_index: int = 0
    """Which official split (mask) of the dataset trains, validates and tests both stages."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
    threads: int = 0
    """CPU threads for PyTorch and the sampler; 0 = PyTorch's default (under ``--nproc``: the cores
    divided among the processes)."""
    checkpoint_every: int = 1
    """Epochs between training snapshots (for ``--resume``); 0 = none."""
    checkpoint_seconds: float = 60.0
    """...and at least this many seconds between them (a snapshot costs a save)."""


@dataclass
class Config:
    """A complete, validated configuration; see the module docstring."""

    graph: GraphConfig = field(default_factory=GraphConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: _section_dict(getattr(self, f.name)) for f in fields(self)}

    def stage1_key(self) -> str:
        """Hash of everything that determines the scores file (graph + stage 1)."""
        blob = json.dumps({"graph": _section_dict(self.graph), "stage1": _section_dict(self.stage1)},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def format(self) -> str:
        """Human-readable ``section.key = value`` listing (what ``spexphormer config`` prints)."""
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines += [f"  {key} = {_show(value)}" for key, value in values.items()]
        return "\n".join(lines)

    def override(self, assignments: list[str] | dict[str, Any]) -> "Config":
        """A copy with ``section.key=value`` assignments applied and validated."""
        items = assignments.items() if isinstance(assignments, dict) else map(_split_assignment, assignments)
        sections = {f.name: getattr(self, f.name) for f in fields(self)}
        for dotted, raw in items:
            section, key = _split_key(dotted, sections)
            hints = get_type_hints(type(sections[section]))
            value = _parse(raw, hints[key], dotted)
            sections[section] = replace(sections[section], **{key: value})
        return validate(Config(**sections))

    @classmethod
    def from_dict(cls, d: dict[str, dict[str, Any]]) -> "Config":
        if not isinstance(d, dict) or not all(isinstance(v, dict) for v in d.values()):
            raise ConfigError(f"a configuration must be {{section: {{key: value}}}}, got {shown(d)}")
        return cls().override({f"{s}.{k}": v for s, values in d.items() for k, v in values.items()})


def _section_dict(section) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(section, f.name), tuple) else v)
            for f in fields(section)}


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _split_assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _split_key(dotted: str, sections: dict) -> tuple[str, str]:
    section, _, key = dotted.partition(".")
    if section not in sections:
        raise ConfigError(f"unknown config section {shown(section)} in {shown(dotted)}; sections: "
                          f"{', '.join(sections)}")
    names = [f.name for f in fields(sections[section])]
    if key not in names:
        raise ConfigError(f"unknown config key {shown(dotted)}; keys of [{section}]: {', '.join(names)}")
    return section, key


def _parse(raw: Any, kind, dotted: str):
    """Convert a CLI string (or a JSON value) to the field's declared type."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(str(raw).replace("_", "")) if not isinstance(raw, (int, float)) else int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return str(raw)
        if getattr(kind, "__origin__", None) is tuple:
            parts = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",") if p.strip()]
            return tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        pass
    name = getattr(kind, "__name__", None) or "comma-separated integers"
    raise ConfigError(f"{dotted}: cannot read {shown(raw)} as {name}")


def _validate_model(s2: Stage2Config) -> None:
    if s2.model not in MODELS:
        raise ConfigError(f"stage2.model must be one of {', '.join(MODELS)}, got {s2.model!r}")
    for key, value, allowed in (("local", s2.local, LOCAL_KINDS), ("branches", s2.branches, BRANCHES)):
        if value not in allowed:
            raise ConfigError(f"stage2.{key} must be one of {', '.join(allowed)}, got {value!r}")
    if not (s2.graph_ks or s2.expander_ks):
        return
    if s2.model != "local-attention":
        raise ConfigError("stage2.graph_ks and stage2.expander_ks (per-type budgets) need stage2.model=local-attention")
    for key, ks in (("graph_ks", s2.graph_ks), ("expander_ks", s2.expander_ks)):
        if len(ks) != s2.num_layers:
            raise ConfigError(f"stage2.{key} has {len(ks)} entries but stage2.num_layers is {s2.num_layers} "
                              "(give both graph_ks and expander_ks, one entry per layer)")
        if min(ks) < 0:
            raise ConfigError(f"stage2.{key} must be non-negative, got {_show(ks)}")


def _check_numbers(cfg: Config) -> None:
    """Every float key finite, every integer (also those of lists) within ``MAX_INT``."""
    for section in fields(cfg):
        values = getattr(cfg, section.name)
        hints = get_type_hints(type(values))
        for f in fields(values):
            value, key, kind = getattr(values, f.name), f"{section.name}.{f.name}", hints[f.name]
            if kind is float and not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}")
            ints = value if isinstance(value, tuple) else (value,) if kind is int else ()
            big = next((v for v in ints if abs(v) > MAX_INT), None)
            if big is not None:
                raise ConfigError(f"{key}={shown(big)} is out of range (integer keys lie within ±{MAX_INT:,})")


def _check_sizes(cfg: Config) -> None:
    """Sizes that would ask for more memory than the machine has, refused before anything is allocated."""
    s1, s2, r = cfg.stage1, cfg.stage2, cfg.run
    if r.seeds > MAX_SEEDS:
        raise ConfigError(f"run.seeds must be at most {MAX_SEEDS:,} (each seed is a full training run), "
                          f"got {r.seeds:,}")
    if s1.restarts > MAX_RESTARTS:
        raise ConfigError(f"stage1.restarts must be at most {MAX_RESTARTS} (each is a full stage 1), got {s1.restarts:,}")
    if s1.seed + RESTART_STRIDE * (s1.restarts - 1) > MAX_INT:
        raise ConfigError(f"stage1.seed={s1.seed:,} with {s1.restarts} restarts: the last restart's seed would pass "
                          f"{MAX_INT:,}")
    for stage, s in (("stage1", s1), ("stage2", s2)):
        # a lower bound: four hidden x hidden projections per layer, float32, held as weights,
        # gradients and AdamW's two moments
        nbytes = 4 * 4 * 4 * s.num_layers * s.hidden ** 2
        if not fits_in_memory(nbytes):
            raise ConfigError(f"{stage}.hidden={s.hidden:,} with {s.num_layers} layers needs at least "
                              f"{nbytes / 2**30:,.0f} GiB for its weights, more than this machine's "
                              f"{machine_memory() / 2**30:,.0f} GiB")


def check_graph_sizes(cfg: Config, num_nodes: int, num_edges: int) -> None:
    """Refuse, before any work, settings whose tensors on this graph would not fit in this
    machine's memory (lower bounds: the augmented graph's edges with one score per stage-1 layer,
    and stage 2's neighbour tables), naming the key to lower.

    Raises:
        ConfigError: ``graph.exp_deg`` or ``stage2.ks`` (and its per-type budgets) too large.
    """
    edges = num_edges + num_nodes * (2 * cfg.graph.exp_deg + 1)  # graph, expander and self-loop edges
    stage1 = edges * (2 * 8 + 1 + 4 * cfg.stage1.num_layers)  # int64 endpoints, a type byte, float32 scores
    if not fits_in_memory(stage1):
        raise ConfigError(f"graph.exp_deg={cfg.graph.exp_deg:,} gives this graph {edges:,} attention edges "
                          f"({stage1 / 2**30:,.0f} GiB with their scores), more than this machine's "
                          f"{machine_memory() / 2**30:,.0f} GiB")
    tables = num_nodes * sum(cfg.stage2.slots()) * 8  # one int64 neighbour id per slot per node
    if not fits_in_memory(tables):
        raise ConfigError(f"stage2.ks={_show(cfg.stage2.slots())} gives {num_nodes:,} nodes neighbour tables of "
                          f"{tables / 2**30:,.0f} GiB, more than this machine's {machine_memory() / 2**30:,.0f} GiB")


def _check_optimiser(cfg: Config) -> None:
    for stage, s in (("stage1", cfg.stage1), ("stage2", cfg.stage2)):
        if not 0 < s.lr <= MAX_LR:
            raise ConfigError(f"{stage}.lr must be in (0, {MAX_LR:g}], got {s.lr}")
        if s.weight_decay < 0:
            raise ConfigError(f"{stage}.weight_decay must be non-negative, got {s.weight_decay}")
        if s.lr * s.weight_decay > 1:  # AdamW scales the weights by 1 - lr * weight_decay each step
            raise ConfigError(f"{stage}.lr x {stage}.weight_decay must be at most 1 (AdamW multiplies the "
                              f"weights by 1 - lr x weight_decay every step), got {s.lr * s.weight_decay:g}")
        if s.clip < 0:
            raise ConfigError(f"{stage}.clip must be non-negative (0 = no clipping), got {s.clip}")


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field constraints; return ``cfg`` or raise ConfigError."""
    _check_numbers(cfg)
    s1, s2, g, r = cfg.stage1, cfg.stage2, cfg.graph, cfg.run
    positive = {
        "graph.expander_candidates": g.expander_candidates, "stage1.hidden": s1.hidden,
        "stage1.num_layers": s1.num_layers, "stage1.heads": s1.heads, "stage1.epochs": s1.epochs,
        "stage1.restarts": s1.restarts,
        "stage2.hidden": s2.hidden, "stage2.heads": s2.heads, "stage2.num_layers": s2.num_layers,
        "stage2.epochs": s2.epochs, "stage2.batch_size": s2.batch_size,
        "stage2.resample_every": s2.resample_every, "stage2.eval_samples": s2.eval_samples, "run.seeds": r.seeds,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")
    for key, value in {"graph.exp_deg": g.exp_deg, "stage1.warmup_epochs": s1.warmup_epochs,
                       "stage2.warmup_epochs": s2.warmup_epochs, "stage1.temp_wait": s1.temp_wait,
                       "stage1.pre_layers": s1.pre_layers, "stage2.pre_layers": s2.pre_layers,
                       "stage2.eval_batch_size": s2.eval_batch_size, "stage2.feature_hops": s2.feature_hops,
                       "run.split_index": r.split_index,
                       "run.threads": r.threads, "run.checkpoint_every": r.checkpoint_every,
                       "run.checkpoint_seconds": r.checkpoint_seconds}.items():
        if value < 0:
            raise ConfigError(f"{key} must be non-negative, got {value}")
    for key, value in {"stage1.lr": s1.lr, "stage2.lr": s2.lr, "stage1.temp_min": s1.temp_min,
                       "stage1.temp_ratio": s1.temp_ratio}.items():
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    for key, value in {"stage1.dropout": s1.dropout, "stage2.dropout": s2.dropout,
                       "stage2.input_dropout": s2.input_dropout}.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {value}")
    if s2.feature_hops > MAX_FEATURE_HOPS:  # each hop is another N x (F + 1) floats held for the run
        raise ConfigError(f"stage2.feature_hops must be at most {MAX_FEATURE_HOPS} (each hop adds a copy of the "
                          f"features), got {s2.feature_hops}")
    if s2.eval_samples > MAX_EVAL_SAMPLES:  # each sample is another prediction pass over val and test
        raise ConfigError(f"stage2.eval_samples must be at most {MAX_EVAL_SAMPLES}, got {s2.eval_samples}")
    _check_optimiser(cfg)
    _check_sizes(cfg)
    if s1.temp_ratio > 1:
        raise ConfigError(f"stage1.temp_ratio must be at most 1 (1 = no annealing), got {s1.temp_ratio}")
    for key, value in {"stage1.norm": s1.norm, "stage2.norm": s2.norm}.items():
        if value not in NORMS:
            raise ConfigError(f"{key} must be one of {', '.join(NORMS)}, got {value!r}")
    for key, value, allowed in (("stage1.type_terms", s1.type_terms, TYPE_TERM_FORMS),
                                ("stage2.type_terms", s2.type_terms, TYPE_TERM_FORMS),
                                ("stage1.warmup_rule", s1.warmup_rule, WARMUP_RULES),
                                ("stage2.warmup_rule", s2.warmup_rule, WARMUP_RULES),
                                ("stage2.head_pairing", s2.head_pairing, HEAD_PAIRINGS)):
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    if s1.export_temperature not in EXPORT_TEMPERATURES:
        raise ConfigError(f"stage1.export_temperature must be one of {', '.join(EXPORT_TEMPERATURES)}, "
                          f"got {s1.export_temperature!r}")
    if s2.sampler not in SAMPLERS:
        raise ConfigError(f"stage2.sampler must be one of {', '.join(SAMPLERS)}, got {s2.sampler!r}")
    if s2.keep_graph_edges and s2.sampler == "uniform":
        raise ConfigError("stage2.keep_graph_edges needs a score-based sampler (reservoir or topk), not uniform")
    _validate_model(s2)
    if s2.graph_ks:  # with per-type budgets, ks is not a setting of its own: it shows the table widths
        s2.ks = s2.slots()
    if len(s2.ks) != s2.num_layers and not s2.graph_ks:
        raise ConfigError(f"stage2.ks has {len(s2.ks)} entries but stage2.num_layers is {s2.num_layers}")
    if min(s2.ks) < 1:
        raise ConfigError(f"stage2.ks must be positive, got {_show(s2.ks)}")
    if s2.hidden % s2.heads:
        raise ConfigError(f"stage2.hidden ({s2.hidden}) must be divisible by stage2.heads ({s2.heads})")
    if s1.hidden % s1.heads:
        raise ConfigError(f"stage1.hidden ({s1.hidden}) must be divisible by stage1.heads ({s1.heads})")
    if r.device not in ("auto", "cpu", "cuda") and not r.device.startswith("cuda:"):
        raise ConfigError(f"run.device must be auto, cpu or cuda[:N], got {r.device!r}")
    return cfg


def replace_section(cfg: Config, section: str, **changes) -> Config:
    """A copy of ``cfg`` with fields of one section changed (validated)."""
    return validate(dataclasses.replace(cfg, **{section: replace(getattr(cfg, section), **changes)}))
