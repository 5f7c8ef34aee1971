"""Issue 23: random and mutated inputs end in one line, never a traceback.

A fixed-seed fuzzer feeds mutated YAML configs, ``.npz`` files, folders of ``.npy`` files, ``.pt``
graphs and ``.pt`` checkpoints to ``info``, ``run`` and ``predict``. Every case must either
succeed (a mutation may leave the input valid) or end with exit status 2 and exactly one
``error:`` line of bounded length (``warning:`` lines may precede it); an exception escaping
``main`` (a traceback) fails the test. Inputs that pass ``info`` are not trained on by ``run``
(that would be a training run per case); the cases and their count are fixed, and the whole test
takes about 20 s.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from spexphormer.cli import main
from spexphormer.config_files import dump_config
from spexphormer.errors import LINE_LIMIT, SpexphormerError
from spexphormer.presets import preset
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import FAST, make_toy_graph

pytestmark = pytest.mark.slow

SEED = 23
CASES = {"yaml": 60, "npz": 40, "npy": 30, "pt": 40, "checkpoint": 30}
#: Values a mutation puts in place of an array or a field.
ODD_VALUES = [np.nan, np.inf, -1, 0, 2**63 - 1, 10**9, "text", None, [], {}, b"\xff", 1e308, True, -2**63]


def _outcome(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        status = main(argv)
    except BaseException as exc:  # noqa: BLE001 - the point: nothing may escape main
        import traceback
        where = traceback.extract_tb(exc.__traceback__)[-3:]
        pytest.fail(f"{argv}: {type(exc).__name__} escaped main (a traceback): {str(exc)[:300]} at "
                    + "; ".join(f"{f.filename.split('/')[-1]}:{f.lineno}" for f in where))
    return status, capsys.readouterr().err.strip().splitlines()


def _check(argv: list[str], capsys, stats: dict, must_fail: bool = False) -> int:
    status, lines = _outcome(argv, capsys)
    errors = [line for line in lines if line.startswith("error: ")]
    if status == 0 and not must_fail:
        assert not errors, (argv, lines)
    else:
        assert status == 2, (argv, status, lines)
        assert len(errors) == 1 and lines[-1] == errors[0], (argv, lines)
        assert all(line.startswith(("error: ", "warning: ")) for line in lines), (argv, lines)
        assert len(errors[0]) <= LINE_LIMIT + len("error: "), (argv, len(errors[0]))
        stats["errors"] += 1
    stats["cases"] += 1
    return status


# -- mutations --------------------------------------------------------------------------------------

def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "splice", "zero", "insert"])
    at = rng.randrange(max(len(data), 1))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[at:]
    elif kind == "splice":
        data[at:at] = data[rng.randrange(len(data)):][: rng.randint(1, 64)]
    elif kind == "zero":
        data[at:at + rng.randint(1, 64)] = bytes(min(64, len(data) - at))
    else:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


YAML_TOKENS = ["&a ", "*a", "{", "}", "[", "]", ": ", "- ", "!!python/object:os.system ", ".nan", ".inf", "-.inf",
               "1e309", "999999999999999999999", "~", "'", '"', "\t", "\n  ", "stage1:\n", "<<: ", "? ", "%YAML 1.2\n",
               "!!binary ", "x" * 5000, "\xff", "\0"]


def _mutate_yaml(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["token", "duplicate", "delete", "swap", "value"])
        i = rng.randrange(len(lines))
        if kind == "token":
            at = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + rng.choice(YAML_TOKENS) + lines[i][at:]
        elif kind == "duplicate":
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif ":" in lines[i]:
            lines[i] = lines[i].split(":")[0] + ": " + str(rng.choice(ODD_VALUES + ["[1, 2]", "{a: 1}", "-1e999"]))
    return "\n".join(lines) + "\n"


def _random_yaml(rng: random.Random) -> str:
    return "".join(rng.choice(YAML_TOKENS + ["a", "b", "1", " ", "\n", "lr", "stage2", "."])
                   for _ in range(rng.randint(1, 60)))


def _graph_arrays(rng: random.Random) -> dict:
    data = make_toy_graph(num_nodes=rng.choice([3, 40, 60]), num_edges=200, seed=rng.randrange(100),
                          task=rng.choice(["binary", "multiclass"]))
    return {"x": data.x.numpy(), "y": data.y.numpy(), "edge_index": data.edge_index.numpy(),
            "train_mask": data.train_mask.numpy(), "val_mask": data.val_mask.numpy(),
            "test_mask": data.test_mask.numpy()}


def _mutate_array(rng: random.Random, a):
    a = np.array(a)
    kind = rng.choice(["value", "dtype", "shape", "odd", "empty", "element"]) if a.ndim else "dtype"
    if kind == "value" and a.size and a.dtype.kind in "biuf":
        a = a.astype(np.float64) if a.dtype.kind not in "if" else a.astype(np.result_type(a.dtype, np.int64))
        a.flat[rng.randrange(a.size)] = rng.choice([-1, 10**9, 2**40, 0, 1, np.nan, np.inf, -2**40]) \
            if a.dtype.kind == "f" else rng.choice([-1, 10**9, 2**40, 0, 1, -2**40])
        return a
    if kind == "dtype":
        try:
            return a.astype(rng.choice([np.float16, np.int8, np.uint8, np.complex64, np.bool_, np.float64, "U3"]))
        except (TypeError, ValueError):
            return a
    if kind == "shape":
        return a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1) if rng.random() < 0.5 else a[: max(a.size - 1, 0)]
    if kind == "empty":
        return a[:0]
    if kind == "element":
        return np.repeat(a, 2, axis=0)
    return rng.choice([np.array("text"), np.array(1.5), np.zeros((2, 2, 2)), np.array([b"x", b"y"])])


def _mutate_graph(rng: random.Random, arrays: dict) -> dict:
    arrays = dict(arrays)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(arrays))
        if rng.random() < 0.15:
            del arrays[key]
        else:
            arrays[key] = _mutate_array(rng, arrays[key])
    return arrays


PLATONOV = {"x": "node_features", "y": "node_labels", "edge_index": "edges", "train_mask": "train_masks",
            "val_mask": "val_masks", "test_mask": "test_masks"}


def _write_npz(rng, path: Path) -> Path:
    arrays = _mutate_graph(rng, _graph_arrays(rng))
    named = {PLATONOV[k]: (v.T if k == "edge_index" and v.ndim == 2 else v) for k, v in arrays.items()}
    np.savez(path, **named)
    if rng.random() < 0.3:
        path.write_bytes(_mutate_bytes(rng, path.read_bytes()))
    return path


def _write_npy_folder(rng, path: Path) -> Path:
    path.mkdir()
    for key, value in _mutate_graph(rng, _graph_arrays(rng)).items():
        np.save(path / f"{key}.npy", value)
    if rng.random() < 0.4:
        victim = rng.choice(sorted(path.iterdir()))
        raw = victim.read_bytes()
        head = raw.index(b"\n") + 1 if b"\n" in raw else len(raw)  # mutate the header most of the time
        victim.write_bytes(_mutate_bytes(rng, raw[:head]) + raw[head:] if rng.random() < 0.7 else
                           _mutate_bytes(rng, raw))
    return path


def _write_pt(rng, path: Path) -> Path:
    arrays = _mutate_graph(rng, _graph_arrays(rng))
    payload = {k: (torch.as_tensor(v) if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" else v)
               for k, v in arrays.items()}
    if rng.random() < 0.3:
        payload[rng.choice(["num_classes", "edge_attr", "x"])] = rng.choice(ODD_VALUES)
    torch.save(payload if rng.random() < 0.9 else rng.choice([[1, 2], "graph", torch.zeros(3)]), path)
    if rng.random() < 0.3:
        path.write_bytes(_mutate_bytes(rng, path.read_bytes()))
    return path


def _odd_field(rng: random.Random, value):
    if isinstance(value, dict) and value and rng.random() < 0.6:
        key = rng.choice(list(value))
        return {**value, key: _odd_field(rng, value[key])}
    return rng.choice(ODD_VALUES + [{"surprise": 1}, torch.zeros(2)])


def _write_checkpoint(rng, path: Path, real: Path) -> Path:
    if rng.random() < 0.5:
        path.write_bytes(_mutate_bytes(rng, real.read_bytes()))  # most fail the checksum or the zip
        return path
    payload = load_checkpoint(real)  # resealed: a valid checksum over edited contents
    key = rng.choice(["model_args", "meta", "config", "kind", "fingerprint", "state_dict"])
    payload[key] = _odd_field(rng, payload[key])
    try:
        return save_checkpoint(path, payload["kind"], payload["model_args"], payload["state_dict"],
                               payload["fingerprint"], payload["config"], payload["meta"])
    except (SpexphormerError, TypeError, AttributeError, RuntimeError):  # the writer cannot seal some of these
        path.write_bytes(_mutate_bytes(rng, real.read_bytes()))
        return path


# -- the test ---------------------------------------------------------------------------------------

def test_mutated_inputs_end_in_one_line(tmp_path, capsys):
    rng = random.Random(SEED)
    np.random.seed(SEED)
    stats = {"cases": 0, "errors": 0}
    graph = tmp_path / "toy.pt"
    torch.save({k: torch.as_tensor(v) for k, v in _graph_arrays(random.Random(0)).items()}, graph)
    run_dir = tmp_path / "trained"
    assert main(["run", "--data", str(graph), "--out", str(run_dir), "--seeds", "1", *FAST]) == 0
    checkpoint = run_dir / "seed0" / "model.pt"
    capsys.readouterr()
    out = ["--out", str(tmp_path / "out")]
    base_yaml = dump_config(preset(None), "yaml")

    for i in range(CASES["yaml"]):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(_mutate_yaml(rng, base_yaml) if i % 3 else _random_yaml(rng), errors="surrogateescape")
        if _check(["config", "--config", str(path)], capsys, stats) == 2:  # bad: `run` refuses it the same way
            _check(["run", "--data", str(graph), "--config", str(path), *out, "--quiet"], capsys, stats, must_fail=True)

    writers = {"npz": lambda p: _write_npz(rng, p.with_suffix(".npz")),
               "npy": lambda p: _write_npy_folder(rng, p),
               "pt": lambda p: _write_pt(rng, p.with_suffix(".pt"))}
    for kind, write in writers.items():
        for i in range(CASES[kind]):
            path = write(tmp_path / f"{kind}{i}")
            if _check(["info", "--data", str(path)], capsys, stats) == 2:
                _check(["run", "--data", str(path), *out, *FAST], capsys, stats, must_fail=True)
            if i % 4 == 0:  # a mutated graph handed to a trained checkpoint
                _check(["predict", "--checkpoint", str(checkpoint), "--data", str(path),
                        "--out", str(tmp_path / "p.csv")], capsys, stats)

    for i in range(CASES["checkpoint"]):
        path = _write_checkpoint(rng, tmp_path / f"ckpt{i}.pt", checkpoint)
        _check(["predict", "--checkpoint", str(path), "--data", str(graph), "--out", str(tmp_path / "p.csv")],
               capsys, stats)

    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    assert stats["cases"] >= sum(CASES.values())
    assert stats["errors"] >= 0.6 * stats["cases"], stats  # most mutants are bad inputs, as meant
