"""The data a run sees and claiming and loading run folders (their files: run_folder.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from . import config as cfg
from . import models
from .checkpoint import load_weights, read_meta, read_shape
from .resolve import Resolved, resolve
from .atomic import remove_temporaries, temporaries
from .run_folder import CONFIG, WEIGHTS, RunFolder
from .data import CorpusData, ImageData, binarize, dequantize, is_corpus_spec, load_corpus, load_images, rows
from .errors import ConfigError, VaelabError

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
    if counts:
        return load_corpus(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction, split_seed=c.seed,
                           vocab_size=c.vocab_size, stop_words=c.stop_words, min_df=c.min_df, max_df=c.max_df)
    return load_images(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction,
                       image_size=c.image_size, split_seed=c.seed)


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
    if r.binarize:
        g = torch.Generator().manual_seed(EVAL_BINARIZE_SEED + SPLITS.index(split))
        x = binarize(x, g)
    elif r.dequantize:  # one seeded dequantization, shared by every model scored on this data
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
    return RunFolder(path).is_run()


def check_claim(out: Path, *, overwrite: bool) -> str:
    """How out may be claimed: "new", "replace" (--overwrite) or "retry" (a failed start); raises if not at all."""
    folder = RunFolder(out)
    if folder.is_failed_start():
        if folder.in_use():  # a live run in its first epoch looks the same
            raise VaelabError(f"{out} is being trained by another process (its first epoch is not saved yet)")
        return "retry"  # stopped before its first checkpoint: the same command may start it again
    if out.exists() and (folder.is_run() or any(p not in temporaries(out, CONFIG) for p in out.iterdir())):
        if not overwrite:
            raise VaelabError(f"{out} already holds a run; resume it to continue, or overwrite it to replace it")
        if not folder.is_run():
            raise VaelabError(f"{out} is a non-empty folder that is not a vaelab run; refusing to overwrite it")
        return "replace"
    return "new"  # absent, empty, or holding only a config.toml temporary (a kill at a run's first write)


def claim(out: Path, *, overwrite: bool) -> str:
    """Make the run folder, refusing to clobber an existing run unless asked to; returns check_claim's answer."""
    how = check_claim(out, overwrite=overwrite)
    if how in ("replace", "retry"):
        shutil.rmtree(out)
    remove_temporaries(out, CONFIG)
    out.mkdir(parents=True, exist_ok=True)
    return how


def load_config(run: str | Path) -> cfg.Config:
    """The resolved config saved in a run folder."""
    return RunFolder(run).read_config()


def load_model(run: str | Path, data_shape: tuple[int, ...] | None = None, device: torch.device | str = "cpu",
               weights: str = WEIGHTS) -> tuple[cfg.Config, nn.Module]:
    """Rebuild a run's model (for examples of data_shape, by default the one it was trained on) and load its weights."""
    c = load_config(run)
    if data_shape is None:
        data_shape = read_shape(Path(run) / weights)
    model = models.build(c, data_shape)
    load_weights(Path(run) / weights, model)
    return c, model.to(device).eval()
