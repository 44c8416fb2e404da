"""The data a run sees: the dataset its config names, and the fixed evaluation inputs of each split."""

from __future__ import annotations

import torch

from .. import models
from ..config import schema as cfg
from ..data import (
    CorpusData,
    ImageData,
    binarize,
    conditioning,
    dequantize,
    is_corpus_spec,
    load_corpus,
    load_images,
    rows,
)
from ..errors import ConfigError, VaelabError
from .resolve import Resolved, resolve

SPLITS = ("train", "val", "test")
# Evaluation binarizes with its own fixed seed, so every run is scored on the same 0/1 test set.
EVAL_BINARIZE_SEED = 20141220


def load_data(c: cfg.Config) -> ImageData | CorpusData:
    """The dataset named by the config (a corpus of word counts for corpus:PATH and 20newsgroups)."""
    counts = is_corpus_spec(c.data)
    if counts and models.spec(c.model).images:
        raise ConfigError(f"model {c.model} models images; {c.data} holds word counts (use model nvdm)")
    multinomial = models.likelihood_for(c) == "multinomial"
    if counts and not multinomial:
        raise ConfigError(f"{c.data} holds word counts; model them with model nvdm (or likelihood multinomial)")
    if multinomial and not counts:
        raise ConfigError("the multinomial likelihood models word counts; use it with data corpus:PATH, bbc_news or "
                          "20newsgroups")
    if counts and c.conditional:
        raise ConfigError(f"conditional = true conditions images on their class; {c.data} holds word counts")
    if counts:
        return load_corpus(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction, split_seed=c.seed,
                           vocab_size=c.vocab_size, stop_words=c.stop_words, min_df=c.min_df, max_df=c.max_df)
    data = load_images(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction,
                       image_size=c.image_size, split_seed=c.seed, channels=c.channels)
    return conditioning.with_labels(data, c.classes) if c.conditional else data


def conditioned(c: cfg.Config, data: ImageData) -> cfg.Config:
    """c with classes set to the width of the one-hot labels load_data packed into data (a conditional run)."""
    if not c.conditional or c.classes:
        return c
    return c.replace(classes=int(data.test.shape[1]) - data.dim)


def split_tensor(data: ImageData, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stored values and labels of one split."""
    if split not in SPLITS:
        raise VaelabError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    return getattr(data, split), getattr(data, f"y_{split}")


def eval_inputs(run: Resolved | cfg.Config, data: ImageData, split: str, device: torch.device) -> torch.Tensor:
    """Float inputs for evaluation; Bernoulli data gets one fixed, seeded binarization (dequantization for
    Gaussian likelihoods with `dequantize`). A saved config is resolved as the run resolved it."""
    r = run if isinstance(run, Resolved) else resolve(run, data.scale, device)
    stored, _ = split_tensor(data, split)
    if not isinstance(stored, torch.Tensor):
        raise VaelabError(f"the {split} split of {data.name} is streamed from disk; evaluate val or test instead")
    x = rows(stored, None, data.scale)
    x, label = x[:, :data.dim], x[:, data.dim:]  # a conditional run's one-hot label follows the image (else (N, 0))
    if r.binarize:
        g = torch.Generator().manual_seed(EVAL_BINARIZE_SEED + SPLITS.index(split))
        x = binarize(x, g)
    elif r.dequantize:  # one seeded dequantization, shared by every model scored on this data
        g = torch.Generator().manual_seed(EVAL_BINARIZE_SEED + SPLITS.index(split))
        x = dequantize(x, data.scale, g)
    # the image's 0/1 draws are the unconditional models' own, so conditional and plain runs score the same points
    return (torch.cat([x, label], 1) if label.shape[1] else x).to(device)
