"""The package installs and imports anywhere: no POSIX-only module at import time, one version."""

import subprocess
import sys
from importlib.metadata import version

import spexphormer
from spexphormer.cli import main


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
