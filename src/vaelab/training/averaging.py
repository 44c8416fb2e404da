"""Weight averaging: the weights a run validates, saves and evaluates may be a moving average of the trained ones.

With ema = d in (0, 1), every optimiser step moves the averaged weights a fraction 1 - d towards the
trained ones (an exponential moving average, Polyak averaging as in PixelCNN++, Salimans et al. 2017):
    a_1 = w_1,   a_t = d * a_{t-1} + (1 - d) * w_t,
i.e. a window of about 1 / (1 - d) steps. torch.optim.swa_utils.AveragedModel does the arithmetic;
buffers (batch-norm statistics) are averaged with the parameters. Training itself is unchanged: the
optimiser steps the trained weights, and a run's bound differs only through the averaged copy that
validation, model.safetensors, `evaluate`, `plot` and the explorer see. The checkpoint keeps both
(prefix "ema."), so --resume continues bit-exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import CheckpointError
from ..runs.checkpoint_check import check_weights

PREFIX = "ema."


def averaged(model: nn.Module, decay: float) -> AveragedModel | None:
    """The moving average of model's weights with this decay; None when decay is 0 (no averaging)."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def shown(model: nn.Module, average: AveragedModel | None) -> nn.Module:
    """The model a run scores and saves: the average when there is one, else the trained model."""
    return model if average is None else average.module


def check_average(path: Path, average: AveragedModel | None, tensors: dict[str, torch.Tensor]) -> dict:
    """A checkpoint's PREFIX tensors checked against the average (names, shapes, values); returns them by its names."""
    if average is None:
        if tensors:
            raise CheckpointError(f"{path}: holds a weight average (ema), but the run is configured without one")
        return {}
    if not tensors:
        raise CheckpointError(f"{path}: holds no weight average, but the run is configured with ema")
    own = {k.removeprefix(PREFIX): v for k, v in tensors.items()}
    check_weights(path, average, own)
    return own


def load_average(path: Path, average: AveragedModel | None, tensors: dict[str, torch.Tensor]) -> None:
    """Restore the average from a checkpoint's PREFIX tensors, checking each name and shape first."""
    own = check_average(path, average, tensors)
    if average is not None:
        average.load_state_dict(own)
