"""Issue 23: nothing outside the run folder is touched. A path the tool would write that is a
symbolic link (dangling or not), a device or a FIFO is refused in one line and left as it was;
``predict --out`` never replaces a device or a link with a regular file."""

import os
import stat

import pytest
import torch

from spexphormer.cli import main
from spexphormer.errors import WriteError
from spexphormer.pipeline.predict import write_predictions
from spexphormer.utils.io import atomic_write, open_in_place
from spexphormer.utils.lock import LOCK_NAME
from tests.helpers import FAST


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _char_device(path):
    """A character device like /dev/null (major 1, minor 3); the tests run as root."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    return path


def _result():
    return {"nodes": torch.arange(3), "logits": torch.zeros(3), "task": "binary"}


def test_predictions_are_not_written_over_a_character_device(tmp_path):
    device = _char_device(tmp_path / "fakenull")
    with pytest.raises(WriteError, match="it is a character device"):
        write_predictions(_result(), device)
    assert stat.S_ISCHR(os.lstat(device).st_mode)  # still the device, not a 102-byte file


def test_predictions_are_not_written_through_a_link(tmp_path):
    link = tmp_path / "stdout"
    os.symlink("/proc/self/fd/1", link)
    with pytest.raises(WriteError, match="it is a symbolic link"):
        write_predictions(_result(), link)
    assert os.readlink(link) == "/proc/self/fd/1"


@pytest.mark.parametrize("kind", ["device", "link"])
def test_predict_out_is_refused_before_any_work(tmp_path, capsys, kind):
    out = tmp_path / "out.csv"
    if kind == "device":
        _char_device(out)
    else:
        os.symlink(tmp_path / "victim.csv", out)  # dangling: it must not create the file it names
    checkpoint = tmp_path / "no-such-model.pt"  # refused before the checkpoint is even read
    assert main(["predict", "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert f"refusing to write {out}: it is a {'character device' if kind == 'device' else 'symbolic link'}" \
        in _error_line(capsys)
    assert os.path.lexists(out) and not (tmp_path / "victim.csv").exists()


def test_in_place_files_refuse_links_fifos_and_devices(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "link")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")  # opening it for writing without a reader would block
    _char_device(tmp_path / "dev")
    for name, kind in [("link", "symbolic link"), ("dangling", "symbolic link"), ("fifo", "FIFO"),
                       ("dev", "character device")]:
        for mode in ("w", "a", "r+"):
            with pytest.raises(WriteError, match=f"it is a {kind}"):
                open_in_place(tmp_path / name, mode)
        with pytest.raises(WriteError, match=f"it is a {kind}"):
            atomic_write(tmp_path / name, lambda handle: handle.write(b"x"))
    assert victim.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()
    with open_in_place(tmp_path / "plain", "w") as handle:  # a regular file, or a new one, is fine
        handle.write("ok\n")
    assert (tmp_path / "plain").read_text() == "ok\n"


@pytest.mark.parametrize("planted", [LOCK_NAME, "stage1.csv", "stage1.jsonl", "seed0/log.jsonl"])
@pytest.mark.parametrize("dangling", [False, True])
def test_links_planted_in_the_run_folder_are_not_followed(tmp_path, capsys, graph_file, planted, dangling):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    if not dangling:
        victim.write_text("precious\n")
    (out / planted).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(victim, out / planted)
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 2
    assert f"it is a symbolic link, not a regular file" in _error_line(capsys)
    assert os.path.islink(out / planted)
    if dangling:
        assert not victim.exists()  # no file created outside OUT
    else:
        assert victim.read_text() == "precious\n"


def test_a_seed_folder_that_is_a_link_is_refused(tmp_path, capsys, graph_file):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    os.symlink(elsewhere, out / "seed0")
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 2
    assert f"refusing to write {out / 'seed0'}: it is a symbolic link" in _error_line(capsys)
    assert list(elsewhere.iterdir()) == []
