"""Loading a trained run: its saved config, and its model rebuilt with the weights loaded."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import models
from ..config import schema as cfg
from .checkpoint import load_weights, read_shape
from .folder import WEIGHTS, RunFolder


def load_config(run: str | Path) -> cfg.Config:
    """The resolved config saved in a run folder."""
    return RunFolder(run).read_config()


def load_model(run: str | Path, data_shape: tuple[int, ...] | None = None, device: torch.device | str = "cpu",
               weights: str = WEIGHTS) -> tuple[cfg.Config, nn.Module]:
    """Rebuild a run's model (for examples of data_shape, by default the one it was trained on) and load its weights."""
    c = load_config(run)
    if data_shape is None:
        data_shape = read_shape(Path(run) / weights)
    return c, load_weights_of(c, run, data_shape, device, weights)[0]


def load_weights_of(c: cfg.Config, run: str | Path, data_shape: tuple[int, ...], device: torch.device | str = "cpu",
                    weights: str = WEIGHTS) -> tuple[nn.Module, str]:
    """The model of config c with the run's weights, and the SHA-256 of the weight bytes loaded: what an
    evaluation is stamped with, even when training replaces the file meanwhile."""
    model = models.build(c, data_shape)
    sha256 = load_weights(Path(run) / weights, model)
    return model.to(device).eval(), sha256
