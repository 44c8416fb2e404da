"""The config resolved once into what a run uses: likelihood, estimator, data treatment, device, precision.

resolve() is called once per run (training/session.py prepare, each sweep group); everything downstream reads the
Resolved fields, and `Resolved.config` is what config.toml saves (likelihood, binarize and
dequantize as used), so reloading a run and resolving it again gives the same values. The device
stays as asked in the file ("auto"), so a run resumed on another machine picks that machine's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .. import models
from ..config import schema as cfg
from ..errors import VaelabError
from ..runtime import precision as precisions


@dataclass(frozen=True)
class Resolved:
    config: cfg.Config  # as saved in config.toml
    likelihood: str
    estimator: str  # the objective trained with (objectives.OBJECTIVES key)
    binarize: bool  # dynamic binarization in training, one seeded binarization for evaluation
    dequantize: bool  # uniform noise within each stored level (quantised data, Gaussian likelihoods)
    device: torch.device
    precision: str  # of the training step's matrix products
    precision_why: str = ""  # the facts behind it, in words (config.toml's comment beside precision)


def device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaelabError("device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def precision(requested: str, dev: torch.device) -> precisions.Decision:
    """The concrete precision (fp32, tf32 or bf16) of the matrix products on dev, and why;
    'auto' is decided here, once."""
    return precisions.decide(requested, dev)


def binarizes(c: cfg.Config, likelihood: str) -> bool:
    """Bernoulli likelihoods binarize unless asked not to (then their numbers are not log p(x): warned)."""
    if likelihood != "bernoulli":
        return False
    if not c.binarize:
        warnings.warn("binarize = false with a Bernoulli likelihood: the Bernoulli likelihood of grey values "
                      "is not a normalised likelihood, so its numbers are not log p(x)", stacklevel=3)
    return c.binarize


def resolve(c: cfg.Config, data_scale: float, dev: torch.device | None = None) -> Resolved:
    """Resolve c for data stored with `data_scale` (1.0: already floats or counts) on dev (default: c.device)."""
    likelihood = models.likelihood_for(c)
    estimator = models.estimator_for(c)
    binarize = binarizes(c, likelihood)
    dequantize = c.dequantize and likelihood != "bernoulli" and data_scale != 1.0
    dev = dev if dev is not None else device(c.device)
    chosen = precision(c.precision, dev)
    saved = c.replace(likelihood=likelihood, estimator=estimator, prior=models.prior_for(c), binarize=binarize,
                      dequantize=dequantize, precision=chosen.precision)
    return Resolved(saved, likelihood, estimator, binarize, dequantize, dev, chosen.precision, chosen.why)
