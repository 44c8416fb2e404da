"""`--log tensorboard`: each epoch's metrics, sample and reconstruction grids, and the run's hyper-parameters,
as TensorBoard event files in RUN/tensorboard/ (`tensorboard --logdir runs/` shows every run side by side).

It is an EpochOutput (training/epochs.py), so a solo run and every model of a sweep log the same way. Scalars
are metrics.jsonl's numbers at step = epoch, tagged by their key's first word: train_loss is
train/loss, val_elbo is val/elbo. Image grids are drawn with a fixed generator, so logging never
moves the training's random stream (a resumed run stays bit-exact).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config import schema as cfg
from ..errors import VaelabError
from ..models.contract import is_latent_variable
from ..reports.plots import tile
from ..runs.folder import RunFolder
from ..runs.resolve import Resolved
from .epochs import score_key

SAMPLES = 64  # decoded prior draws per epoch (8 x 8)
RECON = 8  # validation inputs shown above their reconstructions
IMAGE_SEED = 0


def summary_writer_class():
    """torch.utils.tensorboard.SummaryWriter, or one clear error when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VaelabError("TensorBoard logging needs the tensorboard package: pip install 'vaelab[tensorboard]' "
                          "(or pip install tensorboard)") from None
    return SummaryWriter


def tag(key: str) -> str:
    """A metrics key as a TensorBoard tag: train_loss -> train/loss (TensorBoard groups by the first part)."""
    head, sep, tail = key.partition("_")
    return f"{head}/{tail}" if sep else key


def hyper_parameters(c: cfg.Config) -> dict[str, Any]:
    """The config as TensorBoard hparams: numbers, strings and booleans (tuples as text, None left out)."""
    out: dict[str, Any] = {}
    for key, value in c.to_dict().items():
        out[key] = "x".join(map(str, value)) if isinstance(value, list) else value
    return out


def _image_hw(shape: tuple[int, ...], r: Resolved) -> tuple[int, int] | None:
    """(H, W) of one example when it is a greyscale picture (never for word counts)."""
    if r.likelihood == "multinomial":
        return None
    if len(shape) == 3 and shape[0] == 1:
        return shape[1], shape[2]
    side = math.isqrt(shape[0]) if len(shape) == 1 else 0
    return (side, side) if side and side * side == shape[0] else None


class TensorBoardLog:
    """One SummaryWriter per run folder; on_start logs the hyper-parameters, on_epoch the scalars and images."""

    def __init__(self) -> None:
        self.SummaryWriter = summary_writer_class()  # fails before any run folder is claimed
        self.writers: dict[str, Any] = {}
        self.inputs: dict[str, tuple[torch.Tensor | None, tuple[int, int] | None]] = {}

    def on_start(self, run: RunFolder, r: Resolved, val_x: torch.Tensor | None, shape: tuple[int, ...]) -> None:
        """Open RUN/tensorboard/ and log the config; a resumed run purges what its killed session logged later."""
        from torch.utils.tensorboard.summary import hparams

        rows = run.read_metrics()
        purge = rows[-1]["epoch"] + 1 if rows else None  # TensorBoard drops older events at steps >= this
        old = self.writers.pop(str(run.path), None)
        if old is not None:
            old.close()
        w = self.SummaryWriter(str(run.tensorboard), purge_step=purge)
        self.writers[str(run.path)] = w
        hw = _image_hw(tuple(shape), r)
        self.inputs[str(run.path)] = (val_x[:RECON] if val_x is not None and hw else None, hw)
        metric = tag(score_key(r.estimator))
        for summary in hparams(hyper_parameters(r.config), {metric: float("nan")}):
            w.file_writer.add_summary(summary)
        w.add_text("config", "```toml\n" + cfg.to_toml(r.config) + "\n```")

    @torch.no_grad()
    def on_epoch(self, run: RunFolder, row: dict, model: nn.Module) -> None:
        """The row's numbers as scalars at step = epoch, then the sample and reconstruction grids."""
        w = self.writers.get(str(run.path))
        if w is None:
            raise VaelabError(f"TensorBoardLog.on_epoch for {run.path} before on_start")
        epoch = row["epoch"]
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                w.add_scalar(tag(key), value, epoch)
        x, hw = self.inputs[str(run.path)]
        if hw is not None:
            was_training = model.training
            model.eval()
            if is_latent_variable(model):
                g = torch.Generator().manual_seed(IMAGE_SEED)
                images = model.sample(SAMPLES, g).clamp(0, 1).float().cpu().reshape(-1, *hw).numpy()
                w.add_image("samples", tile(images, 8), epoch, dataformats="HW")
            if x is not None:
                xr = model.decode(model.embed(x)).mean.clamp(0, 1)
                pair = torch.cat([x, xr]).float().cpu().reshape(-1, *hw).numpy()  # data row above its reconstruction
                w.add_image("reconstructions", tile(pair, len(x)), epoch, dataformats="HW")
            model.train(was_training)
        w.flush()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()
