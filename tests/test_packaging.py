"""The package installs and imports anywhere: no POSIX-only module at import time, one version."""

import os
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import pytest

import spexphormer
from spexphormer.cli import main
from tests.helpers import FAST, write_graph_file

ROOT = Path(__file__).resolve().parents[1]


def test_imports_without_fcntl():
    """Windows has no ``fcntl``: a ``None`` entry in ``sys.modules`` makes ``import fcntl`` fail."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import spexphormer, spexphormer.pipeline, spexphormer.cli\n"
            "from spexphormer.pipeline.run import run\n"
            "from spexphormer.utils.lock import run_folder_lock\n"
            "assert 'fcntl' not in sys.modules or sys.modules['fcntl'] is None\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_version_in_one_place(capsys):
    assert version("spexphormer") == spexphormer.__version__
    try:
        main(["--version"])
    except SystemExit as exit:
        assert exit.code == 0
    assert capsys.readouterr().out.strip() == f"spexphormer {spexphormer.__version__}"


@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path):
    """``python -m build`` makes a wheel and an sdist that ``twine check`` accepts; the wheel,
    installed into a fresh virtual environment, runs ``spexphormer --version`` and a tiny ``run``.

    The fresh environment borrows this one's third-party packages (torch, PyG, ...) through a
    ``.pth`` line instead of downloading them; the package itself comes from the wheel only."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    assert wheel.name == f"spexphormer-{spexphormer.__version__}-py3-none-any.whl"
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([python, "-c", "import spexphormer; print(spexphormer.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert Path(where).resolve().is_relative_to(venv.resolve())  # the wheel, not this checkout

    cli = bin_dir / "spexphormer"
    shown = subprocess.run([cli, "--version"], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert shown.stdout.strip() == f"spexphormer {spexphormer.__version__}"
    graph = write_graph_file(tmp_path / "toy.pt")
    ran = subprocess.run([cli, "run", "--data", str(graph), "--seeds", "1", "--out", str(tmp_path / "out"), *FAST],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "out" / "results.json").is_file()
