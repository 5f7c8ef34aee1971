"""The README's "PyG integration" section: every block marked `<!-- tested -->` runs, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## PyG integration"
BLOCK = re.compile(r"<!-- tested -->\n```(python|bash)\n(.*?)```", re.S)


def _tested_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return BLOCK.findall(text[start:end if end > 0 else None])


def test_the_section_has_python_and_shell_blocks():
    kinds = [kind for kind, _ in _tested_blocks()]
    assert kinds.count("python") >= 3 and kinds.count("bash") >= 2


@pytest.mark.slow
def test_readme_blocks_run(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "spexphormer"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m spexphormer "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    namespace: dict = {}
    for kind, code in _tested_blocks():
        if kind == "python":
            exec(compile(code, "README.md", "exec"), namespace)
        else:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
    log = (work / "run.log").read_text()
    assert "\r" not in log and len(log.splitlines()) == 2  # stage 1 and the one seed
    assert {"curves.png", "log.csv", "log.jsonl", "model.pt"} <= {p.name for p in (work / "runs/before/seed0").iterdir()}
    table = np.loadtxt(work / "new-nodes.csv", delimiter=",", skiprows=1)
    assert table[:, 0].astype(int).tolist() == list(range(1600, 2000))
    y = namespace["data"].y[1600:].numpy()
    assert (table[:, 1].astype(int) == y).mean() > 0.4  # 5 classes: chance 0.2
