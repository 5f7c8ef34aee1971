"""Typed configuration: one dataclass per concern, one preset per dataset.

A :class:`Config` has four sections::

    graph   the augmented attention graph (expander degree, seed)
    stage1  the Attention Score Estimator (narrow, full batch) and its temperature schedule
    stage2  the wide Spexphormer network (sampling degrees, batches); the full-batch Exphormer
            baseline uses the same width, heads, depth and optimiser settings
    run     seeds, device, split index

Presets hold the reference hyper-parameters of the paper (``docs`` METHOD §5). Any field can be
overridden with ``section.key=value`` strings (the CLI's ``--set``); an unknown section or key,
or a value of the wrong type, raises :class:`~spexphormer.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from spexphormer.errors import ConfigError

NORMS = ("batch", "graph", "layer", "none")
SAMPLERS = ("reservoir", "uniform", "topk")


@dataclass
class GraphConfig:
    """The expander-augmented attention graph (METHOD §2)."""

    exp_deg: int = 15  # random Hamiltonian cycles; expander in-degree is 2 * exp_deg
    expander_candidates: int = 1  # keep the candidate with the largest spectral gap (n <= 100k)
    seed: int = 0


@dataclass
class Stage1Config:
    """The Attention Score Estimator and its training (METHOD §3)."""

    hidden: int = 4
    num_layers: int = 4
    heads: int = 1
    norm: str = "graph"
    dropout: float = 0.0
    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 1e-3
    warmup_epochs: int = 5
    clip: float = 1.0
    temp_ratio: float = 0.99  # T = max(temp_min, temp_ratio ** (epoch - temp_wait)); 1.0 = off
    temp_wait: int = 5
    temp_min: float = 0.05
    seed: int = 0


@dataclass
class Stage2Config:
    """The wide network trained on sampled, regular-degree graphs (METHOD §4)."""

    hidden: int = 32
    heads: int = 4
    num_layers: int = 4
    ks: tuple[int, ...] = (12, 5, 5, 5)  # sampled in-edges per node, one per layer
    sampler: str = "reservoir"
    keep_graph_edges: bool = False  # graph edges take the first slots; the scores fill the rest
    resample_every: int = 1  # epochs between re-sampling the sparse graphs
    dropout: float = 0.2
    norm: str = "batch"
    epochs: int = 80
    lr: float = 0.01
    weight_decay: float = 1e-3
    warmup_epochs: int = 5
    clip: float = 1.0
    batch_size: int = 100_000
    eval_batch_size: int = 0  # 0 = same as batch_size


@dataclass
class RunConfig:
    """What to run: seeds, device, split."""

    seeds: int = 5
    seed: int = 0  # first seed; seeds are seed, seed + 1, ...
    split_index: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for PyTorch and the sampler; 0 = PyTorch's default


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
        raise ConfigError(f"unknown config section {section!r} in {dotted!r}; sections: {', '.join(sections)}")
    names = [f.name for f in fields(sections[section])]
    if key not in names:
        raise ConfigError(f"unknown config key {dotted!r}; keys of [{section}]: {', '.join(names)}")
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
    raise ConfigError(f"{dotted}: cannot read {raw!r} as {name}")


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field constraints; return ``cfg`` or raise ConfigError."""
    s1, s2, g, r = cfg.stage1, cfg.stage2, cfg.graph, cfg.run
    positive = {
        "graph.expander_candidates": g.expander_candidates, "stage1.hidden": s1.hidden,
        "stage1.num_layers": s1.num_layers, "stage1.heads": s1.heads, "stage1.epochs": s1.epochs,
        "stage2.hidden": s2.hidden, "stage2.heads": s2.heads, "stage2.num_layers": s2.num_layers,
        "stage2.epochs": s2.epochs, "stage2.batch_size": s2.batch_size,
        "stage2.resample_every": s2.resample_every, "run.seeds": r.seeds,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")
    for key, value in {"graph.exp_deg": g.exp_deg, "stage1.warmup_epochs": s1.warmup_epochs,
                       "stage2.warmup_epochs": s2.warmup_epochs, "stage1.temp_wait": s1.temp_wait,
                       "stage2.eval_batch_size": s2.eval_batch_size, "run.split_index": r.split_index,
                       "run.threads": r.threads}.items():
        if value < 0:
            raise ConfigError(f"{key} must be non-negative, got {value}")
    for key, value in {"stage1.lr": s1.lr, "stage2.lr": s2.lr, "stage1.temp_min": s1.temp_min,
                       "stage1.temp_ratio": s1.temp_ratio}.items():
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    for key, value in {"stage1.dropout": s1.dropout, "stage2.dropout": s2.dropout}.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {value}")
    if s1.temp_ratio > 1:
        raise ConfigError(f"stage1.temp_ratio must be at most 1 (1 = no annealing), got {s1.temp_ratio}")
    for key, value in {"stage1.norm": s1.norm, "stage2.norm": s2.norm}.items():
        if value not in NORMS:
            raise ConfigError(f"{key} must be one of {', '.join(NORMS)}, got {value!r}")
    if s2.sampler not in SAMPLERS:
        raise ConfigError(f"stage2.sampler must be one of {', '.join(SAMPLERS)}, got {s2.sampler!r}")
    if s2.keep_graph_edges and s2.sampler == "uniform":
        raise ConfigError("stage2.keep_graph_edges needs a score-based sampler (reservoir or topk), not uniform")
    if len(s2.ks) != s2.num_layers:
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


# ---------------------------------------------------------------------------------------------
# Presets: the reference hyper-parameters (METHOD §5). Keys are the dataset registry's names.
# ---------------------------------------------------------------------------------------------

def _preset(s1: dict, s2: dict, graph: dict | None = None) -> Config:
    return validate(Config(graph=GraphConfig(**(graph or {})), stage1=Stage1Config(**s1),
                           stage2=Stage2Config(**s2)))


def _s1(layers=4, hidden=4, epochs=100, lr=0.01, ratio=0.99, wait=5, norm="graph"):
    return dict(num_layers=layers, hidden=hidden, epochs=epochs, lr=lr, temp_ratio=ratio,
                temp_wait=wait, norm=norm)


def _s2(layers, hidden, heads, ks, dropout, lr, epochs, batch):
    return dict(num_layers=layers, hidden=hidden, heads=heads, ks=tuple(ks), dropout=dropout,
                lr=lr, epochs=epochs, batch_size=batch)


PRESETS: dict[str, Config] = {
    "actor": _preset(_s1(wait=20), _s2(3, 32, 4, (2, 2, 2), 0.5, 0.01, 100, 10_000)),
    "minesweeper": _preset(_s1(), _s2(4, 32, 4, (12, 5, 5, 5), 0.2, 0.01, 80, 100_000)),
    "tolokers": _preset(_s1(ratio=1.0), _s2(4, 32, 4, (12, 10, 10, 10), 0.25, 0.01, 200, 100_000)),
    "computer": _preset(_s1(epochs=200), _s2(4, 80, 2, (5,) * 4, 0.5, 0.001, 150, 100_000)),
    "cs": _preset(_s1(epochs=200), _s2(4, 64, 2, (5,) * 4, 0.4, 0.002, 120, 100_000)),
    "physics": _preset(_s1(epochs=200), _s2(4, 64, 2, (5,) * 4, 0.4, 0.001, 80, 100_000)),
    "photo": _preset(_s1(lr=0.1, ratio=0.95, wait=20), _s2(4, 56, 2, (5,) * 4, 0.5, 0.01, 100, 10_000)),
    "amazon2m": _preset(_s1(layers=2, epochs=200, wait=20, norm="batch"),
                        _s2(2, 128, 1, (10, 10), 0.2, 0.001, 200, 1_000)),
    "pokec": _preset(_s1(layers=2, hidden=8, epochs=150, ratio=0.95, wait=10),
                     _s2(2, 64, 1, (20, 20), 0.2, 0.001, 300, 500), graph=dict(exp_deg=5)),
    "ogbn-proteins": _preset(_s1(layers=2, hidden=8, epochs=200, wait=20),
                             _s2(2, 64, 1, (50, 30), 0.1, 0.005, 200, 256), graph=dict(exp_deg=100)),
    # Not in the paper's tables: the Actor-like setting, a sensible start for citation graphs.
    "cora": _preset(_s1(wait=20), _s2(3, 32, 4, (5, 5, 5), 0.5, 0.01, 100, 10_000)),
    "ogbn-arxiv": _preset(_s1(layers=2, hidden=8, epochs=200, wait=20),
                          _s2(2, 64, 2, (10, 10), 0.2, 0.001, 200, 10_000)),
}

# Bring-your-own graphs and synthetic graphs: the Minesweeper setting (4 layers, width 32, 4 heads).
DEFAULT_PRESET = "minesweeper"


def preset(name: str | None) -> Config:
    """The preset of a named dataset, or the default one for other graphs (a fresh copy)."""
    base = PRESETS.get(name or DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    return Config.from_dict(base.to_dict())


def replace_section(cfg: Config, section: str, **changes) -> Config:
    """A copy of ``cfg`` with fields of one section changed (validated)."""
    return validate(dataclasses.replace(cfg, **{section: replace(getattr(cfg, section), **changes)}))
