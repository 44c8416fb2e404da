"""Run folders and the data a run sees: device choice, binarization, loading a trained model.

A run folder holds
    config.toml             the resolved config
    metrics.jsonl           one line per epoch
    model.safetensors       the weights to use (best validation bound)
    checkpoint.safetensors  the full training state of the last finished epoch (for --resume)
    eval.json, plots/, report.html
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from . import config as cfg
from . import models
from .checkpoint import load_weights, read_shape
from .data import CorpusData, ImageData, binarize, dequantize, is_corpus_spec, load_corpus, load_images, rows
from .errors import ConfigError, VaelabError

SPLITS = ("train", "val", "test")
# Evaluation binarizes with its own fixed seed, so every run is scored on the same 0/1 test set.
EVAL_BINARIZE_SEED = 20141220


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaelabError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def load_data(c: cfg.Config) -> ImageData | CorpusData:
    """The dataset named by the config (a corpus of word counts for corpus:PATH and 20newsgroups)."""
    counts, multinomial = is_corpus_spec(c.data), models.likelihood_for(c) == "multinomial"
    if counts and not multinomial:
        raise ConfigError(f"{c.data} holds word counts; model them with --model nvdm (or --likelihood multinomial)")
    if multinomial and not counts:
        raise ConfigError("the multinomial likelihood models word counts; use it with --data corpus:PATH or "
                          "20newsgroups")
    if counts:
        return load_corpus(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction, split_seed=c.seed,
                           vocab_size=c.vocab_size, stop_words=c.stop_words, min_df=c.min_df, max_df=c.max_df)
    return load_images(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction,
                       image_size=c.image_size, split_seed=c.seed)


def binarizes(c: cfg.Config) -> bool:
    """True when training re-binarizes and evaluation uses a seeded binarization (never for word counts)."""
    if models.likelihood_for(c) != "bernoulli":
        return False
    if not c.binarize:
        warnings.warn("binarize = false with a Bernoulli likelihood: the Bernoulli likelihood of grey values "
                      "is not a normalised likelihood, so its numbers are not log p(x)", stacklevel=2)
    return c.binarize


def dequantizes(c: cfg.Config, data: ImageData) -> bool:
    """True when a Gaussian-likelihood run adds uniform noise within each stored level (quantised data only)."""
    return c.dequantize and c.likelihood != "bernoulli" and data.scale != 1.0


def split_tensor(data: ImageData, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stored values and labels of one split."""
    if split not in SPLITS:
        raise VaelabError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    return getattr(data, split), getattr(data, f"y_{split}")


def eval_inputs(c: cfg.Config, data: ImageData, split: str, device: torch.device) -> torch.Tensor:
    """Float inputs for evaluation; Bernoulli data gets one fixed, seeded binarization (dequantization for
    Gaussian likelihoods with `dequantize`)."""
    stored, _ = split_tensor(data, split)
    if not isinstance(stored, torch.Tensor):
        raise VaelabError(f"the {split} split of {data.name} is streamed from disk; evaluate val or test instead")
    x = rows(stored, None, data.scale)
    if binarizes(c):
        g = torch.Generator().manual_seed(EVAL_BINARIZE_SEED + SPLITS.index(split))
        x = binarize(x, g)
    elif dequantizes(c, data):  # one seeded dequantization, shared by every model scored on this data
        g = torch.Generator().manual_seed(EVAL_BINARIZE_SEED + SPLITS.index(split))
        x = dequantize(x, data.scale, g)
    return x.to(device)


def default_out(c: cfg.Config, root: str | Path = "runs") -> Path:
    """runs/<model>-<data>-NNN, the first number not taken."""
    kind, _, path = c.data.partition(":")
    name = Path(path.rstrip("/")).name if kind == "corpus" and path else kind  # corpus:x/bbc_news -> bbc_news
    return first_free(Path(root), f"{c.model}-{name or kind}")


def first_free(root: Path, stem: str) -> Path:
    """root/<stem>-NNN with the first number not taken."""
    for i in range(1, 10_000):
        p = root / f"{stem}-{i:03d}"
        if not p.exists():
            return p
    raise VaelabError(f"too many folders named {stem}-NNN under {root}")


def is_run(path: Path) -> bool:
    return (path / "config.toml").is_file()


def check_claim(out: Path, *, overwrite: bool) -> bool:
    """Whether claiming out must first remove an old run; raises if it may not be claimed at all."""
    if out.exists() and (is_run(out) or any(out.iterdir())):
        if not overwrite:
            raise VaelabError(f"{out} already holds a run; use --resume to continue it or --overwrite to replace it")
        if not is_run(out):
            raise VaelabError(f"{out} is a non-empty folder that is not a vaelab run; refusing to overwrite it")
        return True
    return False


def claim(out: Path, *, overwrite: bool) -> None:
    """Make the run folder, refusing to clobber an existing run unless asked to."""
    if check_claim(out, overwrite=overwrite):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def load_config(run: str | Path) -> cfg.Config:
    """The resolved config saved in a run folder."""
    run = Path(run)
    if not is_run(run):
        raise VaelabError(f"{run} is not a vaelab run folder (no config.toml)")
    return cfg.load(run / "config.toml")


def load_model(run: str | Path, data_shape: tuple[int, ...] | None = None, device: torch.device | str = "cpu",
               weights: str = "model.safetensors") -> tuple[cfg.Config, nn.Module]:
    """Rebuild a run's model (for examples of data_shape, by default the one it was trained on) and load its weights."""
    c = load_config(run)
    if data_shape is None:
        data_shape = read_shape(Path(run) / weights)
    model = models.build(c, data_shape)
    load_weights(Path(run) / weights, model)
    return c, model.to(device).eval()
