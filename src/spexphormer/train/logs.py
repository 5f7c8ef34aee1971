"""What a training run leaves for people to look at: logs, curves and a progress display.

For a log path ``DIR/NAME.jsonl`` an :class:`EpochLogger` writes, as training goes::

    DIR/NAME.jsonl      one JSON record per epoch (flushed every epoch)
    DIR/NAME.csv        the same records as a table
    DIR/tensorboard/    TensorBoard event files, one scalar per numeric field (when the optional
                        ``tensorboard`` package is installed: ``pip install spexphormer[tensorboard]``)

and, when the stage ends, ``DIR/curves.png`` (``DIR/NAME-curves.png`` unless NAME is ``log``):
loss and metrics per epoch.

On a terminal the progress is a tqdm bar. When stderr is not a terminal (output sent to a file
or a pipe) there is no bar: one line when the stage ends, and one a minute at most while it runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from spexphormer.utils.io import atomic_write, make_folder, open_in_place

HEARTBEAT_SECONDS = 60.0
METRIC_KEYS = ("train", "val", "test")

__all__ = ["EpochLogger", "bars_wanted", "plot_curves"]


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def bars_wanted(progress: bool, stream=None) -> bool:
    """Whether to draw a progress bar: asked for, and ``stream`` (default stderr) is a terminal."""
    return bool(progress) and _is_terminal(stream if stream is not None else sys.stderr)


def _tensorboard_writer(folder: Path, name: str):
    """A ``SummaryWriter`` when TensorBoard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder / "tensorboard"), filename_suffix=f".{name}")


class EpochLogger:
    """Per-epoch records to JSON lines, CSV and TensorBoard; the curves; the progress display.

    Args:
        log_path: ``DIR/NAME.jsonl``, or None to write no files.
        desc: The stage's name, shown on the bar and in the log lines.
        epochs: Number of epochs the stage will run.
        progress: Show progress at all (a bar on a terminal, lines otherwise).
        stream: Where progress goes. (default: ``sys.stderr``)
    """

    def __init__(self, log_path: str | Path | None, desc: str, epochs: int, progress: bool = True,
                 stream=None) -> None:
        self.desc, self.epochs, self.records = desc, epochs, []
        self.stream = stream if stream is not None else sys.stderr
        self.bar = tqdm(total=epochs, desc=desc, leave=False, dynamic_ncols=True, file=self.stream,
                        disable=not bars_wanted(progress, self.stream))
        self.lines = progress and self.bar.disable
        self._start = self._last_line = time.perf_counter()
        self._jsonl = self._csv = self._csv_writer = self._tb = None
        self.path = Path(log_path) if log_path is not None else None
        if self.path is not None:
            make_folder(self.path.parent)
            self._jsonl = open_in_place(self.path, "w")  # a link or a device there is refused
            self._tb = _tensorboard_writer(self.path.parent, self.path.stem)

    @property
    def csv_path(self) -> Path | None:
        return None if self.path is None else self.path.with_suffix(".csv")

    @property
    def curves_path(self) -> Path | None:
        if self.path is None:
            return None
        name = "curves.png" if self.path.stem == "log" else f"{self.path.stem}-curves.png"
        return self.path.with_name(name)

    def log(self, record: dict, best: float = math.nan) -> None:
        """One epoch's record (``epoch``, ``loss``, metrics, ...); ``best`` is the best val so far."""
        self.records.append(record)
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
            self._jsonl.flush()
            self._write_csv(record)
        if self._tb is not None:
            for key, value in record.items():
                if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{key}", value, record["epoch"])
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{record.get('val', math.nan):.4f}",
                             best=f"{best:.4f}", refresh=False)
        self.bar.update(1)
        now = time.perf_counter()
        if self.lines and now - self._last_line >= HEARTBEAT_SECONDS and len(self.records) < self.epochs:
            self._last_line = now
            self._line(f"epoch {record['epoch'] + 1}/{self.epochs}, loss {record['loss']:.4f}, "
                       f"val {record.get('val', math.nan):.4f}, best val {best:.4f}")

    def close(self, best_epoch: int | None = None, val: float = math.nan, test: float = math.nan) -> None:
        """Ends the stage: closes the files, writes the curves, prints the stage's line."""
        self.bar.close()
        for handle in (self._jsonl, self._csv):
            if handle is not None:
                handle.close()
        if self._tb is not None:
            self._tb.close()
        if self.curves_path is not None and self.records:
            plot_curves(self.records, self.curves_path, title=self.desc, best_epoch=best_epoch)
        if self.lines and best_epoch is not None:
            self._line(f"{len(self.records)} epochs in {time.perf_counter() - self._start:.1f} s, "
                       f"best val {val:.4f} at epoch {best_epoch}, test {test:.4f}")

    def _write_csv(self, record: dict) -> None:
        if self._csv is None:
            self._csv = open_in_place(self.csv_path, "w")
            self._csv_writer = csv.DictWriter(self._csv, fieldnames=list(record), extrasaction="ignore")
            self._csv_writer.writeheader()
        self._csv_writer.writerow(record)
        self._csv.flush()

    def _line(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.stream, flush=True)


def plot_curves(records: list[dict], path: str | Path, title: str = "", best_epoch: int | None = None) -> Path:
    """``path`` (PNG, written atomically): loss per epoch, and each of train/val/test metrics;
    a dashed line marks ``best_epoch`` (the best validation epoch, whose weights are kept)."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    loss_ax, metric_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["loss"] for r in records], color="black")
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key in METRIC_KEYS:
        if any(key in r for r in records):
            metric_ax.plot(epochs, [r.get(key, math.nan) for r in records], label=key)
    metric_ax.set(xlabel="epoch", ylabel="metric", title="metrics")
    if best_epoch is not None and best_epoch >= 0:
        for ax in (loss_ax, metric_ax):
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=0.8)
        metric_ax.plot([], [], color="grey", linestyle="--", linewidth=0.8, label="best val")
    if metric_ax.lines:
        metric_ax.legend()
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
