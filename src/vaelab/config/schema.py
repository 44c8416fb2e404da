"""Experiment configuration: one frozen dataclass, TOML in, resolved TOML out.

The keys are flat (a TOML file and `--set` name them alone) and fall into four concerns, GROUPS: the data,
the model, training and evaluation, each with its own validator, whose every message names one key.
Unknown keys raise, so a typo in a config file or a `--set` flag never passes silently.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import ConfigError, did_you_mean
from .choices import DEVICES, ESTIMATORS, FLOWS, LIKELIHOODS, NOISES, POSTERIORS, PRECISIONS, PRIORS, SCALES


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. Field names are the TOML keys.

    The defaults are the embedded default run (configs/default.toml): the MLP VAE of Kingma & Welling 2014, in-200-20
    with ReLU and a Bernoulli likelihood, on scikit-learn's 8x8 digits. Digits has ~1,300
    training images, so it gets more epochs and a larger step than the usual MNIST recipe for that VAE.
    """

    # data
    data: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    image_size: int = 28
    conditional: bool = False  # Sohn et al. 2015's CVAE: the one-hot label enters encoder and decoder
    classes: int = 0  # width of that one-hot label; set from the data's labels when the run starts (0: not yet)
    channels: int = 0  # colour channels of images: 1 (grey) or 3 (RGB); 0: what the images are (folder:PATH converts)
    binarize: bool = True  # dynamic binarization whenever the likelihood is Bernoulli
    # corpora: CountVectorizer settings (ignored when the corpus ships a vocabulary.txt)
    vocab_size: int = 0  # keep the most frequent words; 0 keeps all
    stop_words: str = "none"  # "english" (scikit-learn's list) or "none"
    min_df: float = 1.0  # drop words in fewer documents: >= 1 is a count, < 1 a fraction
    max_df: float = 1.0  # drop words in more documents: <= 1 is a fraction, > 1 a count
    # topic coherence (topics/coherence.py): NPMI's co-occurrence unit (0: whole documents; N: a sliding window of N
    # tokens, 10 as in Roeder et al. 2015's C_NPMI) and its reference corpus (None: the training split; a text
    # file with one document per line, or a folder of .txt files)
    npmi_window: int = 0
    npmi_reference: str | None = None
    # model
    model: str = "vae"
    hidden: tuple[int, ...] = (200,)
    latent_dim: int | tuple[int, ...] = 20  # a list gives one size per stochastic layer, bottom first (hvae)
    likelihood: str = "bernoulli"
    posterior_scale: str = "exp"  # sigma = exp(logvar/2) | softplus(h)+1e-8 | relu(h)+0.05
    # family of q(z|x), reparameterised (Kingma & Welling 2014, the reparameterisation trick)
    posterior: str = "gaussian"
    prior: str = "normal"  # p(z): standard normal, standard Laplace, the VampPrior (or a model's own)
    pseudo_inputs: int = 500  # the VampPrior's learned pseudo-inputs K
    flow: str = "none"  # q(z|x) = a Gaussian pushed through flow_steps planar or IAF steps
    flow_steps: int = 2
    # topic models (prodlda, etm): Dirichlet(alpha) prior (Laplace approximation), dropout on the encoder's
    # hidden layer and on theta, batch norm; etm: word embeddings from a text file (word v1 ... vL) or learned
    alpha: float = 1.0
    dropout: float = 0.2
    batch_norm: bool = True
    embeddings: str | None = None
    embedding_dim: int = 300
    # your own networks (models/user_networks.py): "pkg.module:Class" and its keyword arguments as a JSON object
    encoder: str | None = None
    encoder_args: str = ""
    decoder: str | None = None
    decoder_args: str = ""
    dequantize: bool = False  # Gaussian likelihoods: uniform noise within each pixel level (data.dequantize)
    # denoising autoencoder (model "dae"): masking zeroes each input with probability noise_level;
    # gaussian adds N(noise_mean, noise_level^2) to every input
    noise: str = "masking"
    noise_level: float = 0.25
    noise_mean: float = 0.0
    # PixelCNN (models "pixelcnn", "pixel-vae"'s decoder): gated layers of pixel_channels, pixel_kernel odd
    pixel_channels: int = 32
    pixel_layers: int = 5
    pixel_kernel: int = 5
    pixel_context: int = 0  # hidden units of the row context (models/pixel/context.py: every row above); 0 turns it off
    # VQ-VAE (model "vqvae", van den Oord et al. 2017): codebook of codebook_size vectors of code_dim, EMA updates
    # with codebook_decay, commitment weight beta; a code whose EMA count falls below codebook_restart is moved to
    # an encoder output of the batch (0 turns restarts off). codes: the vqvae run a "code-prior" model is fitted on
    codebook_size: int = 512
    code_dim: int = 64
    commitment: float = 0.25
    codebook_decay: float = 0.99
    codebook_restart: float = 1.0
    codes: str | None = None
    # objective
    estimator: str = "sgvb-b"
    k: int = 1  # Monte-Carlo samples per example (importance samples for iwae)
    kl_warmup: int = 0  # epochs over which the KL weight rises linearly from 0 to 1
    beta: float = 1.0  # β-VAE: the KL weight in the loss (btcvae, factorvae: the total correlation's), never the bound
    free_bits: float = 0.0  # pixel-vae with sgvb-b: nats per latent dimension the loss charges at least (not the bound)
    # optimisation
    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 1.0  # the learning rate of epoch e is lr * lr_decay^(e-1); 1 keeps it constant
    # validate, save, evaluate a moving average of the weights with this decay (training/averaging.py); 0: off
    ema: float = 0.0
    weight_decay: float = 0.0  # L2 penalty (Adam's, coupled) on weight matrices, never on biases
    patience: int = 0  # early stopping on the validation bound; 0 turns it off
    max_minutes: float = 0.0  # training-time budget: no epoch starts that could pass it (training/loop.py); 0: off
    save_every: int = 0  # also keep the weights of every N-th epoch in RUN/epochs/; 0 turns it off
    seed: int = 0
    device: str = "auto"
    # the networks' matrix products; auto: from a table of hardware facts (runtime/precision.py)
    precision: str = "auto"
    cuda_graphs: bool = True  # replay the training step as a CUDA graph on a GPU
    shards: int = 0  # data shards a batch is drawn from; 0: one per process (see training/batches.py)
    # evaluation done at the end of `vaelab train`
    eval_k: int = 1000
    eval_batch: int = 0  # data points per evaluation chunk; 0 picks one from memory
    # where the run goes (None: runs/<model>-<data>-NNN)
    out: str | None = None

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; None values are dropped because TOML has no null."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


# The keys of each concern. The fields above keep their order (config.toml lists them so); a key belongs to the
# concern that reads it: npmi_* to the evaluation (topic coherence), dequantize to the data (noise within a level).
GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("data", "data_dir", "val_fraction", "image_size", "channels", "binarize", "dequantize", "vocab_size",
             "stop_words", "min_df", "max_df"),
    "model": ("model", "conditional", "classes", "hidden", "latent_dim", "likelihood", "posterior_scale", "posterior",
              "prior", "pseudo_inputs", "flow", "flow_steps", "alpha", "dropout", "batch_norm", "embeddings",
              "embedding_dim", "encoder", "encoder_args", "decoder", "decoder_args", "noise", "noise_level",
              "noise_mean", "pixel_channels", "pixel_layers", "pixel_kernel", "pixel_context", "codebook_size",
              "code_dim", "commitment", "codebook_decay", "codebook_restart", "codes"),
    "training": ("estimator", "k", "beta", "kl_warmup", "free_bits", "epochs", "batch_size", "lr", "lr_decay",
                 "ema", "weight_decay", "patience", "max_minutes", "save_every", "seed", "device", "precision",
                 "cuda_graphs", "shards", "out"),
    "evaluation": ("eval_k", "eval_batch", "npmi_window", "npmi_reference"),
}


def _need(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def _one_of(c: Config, key: str, names: tuple[str, ...]) -> None:
    value = getattr(c, key)
    _need(value in names, f"{key} must be one of {', '.join(names)}, not {value!r}")


def _at_least(c: Config, key: str, low: float, why: str = "") -> None:
    value = getattr(c, key)
    _need(value >= low, f"{key} must be >= {low}{why}, not {value}")


def _check_data(c: Config) -> None:
    _need(bool(c.data), "data must name a dataset")
    _need(0.0 <= c.val_fraction < 1.0, f"val_fraction must be in [0, 1), not {c.val_fraction}")
    _need(4 <= c.image_size <= MAX_IMAGE_SIZE, f"image_size must be in [4, {MAX_IMAGE_SIZE}], not {c.image_size}")
    _need(c.channels in (0, 1, 3), f"channels must be 1 (grey) or 3 (RGB), not {c.channels}")
    _need(not (c.dequantize and c.likelihood == "bernoulli"),
          "dequantize applies to Gaussian likelihoods; Bernoulli data is binarized instead")
    _at_least(c, "vocab_size", 0, " (0 keeps every word)")
    _need(c.stop_words in ("english", "none"), f"stop_words must be 'english' or 'none', not {c.stop_words!r}")
    _need(c.min_df > 0, f"min_df must be positive (>= 1: a count of documents, < 1: a fraction), not {c.min_df}")
    _need(c.max_df > 0, f"max_df must be positive (<= 1: a fraction of documents, > 1: a count), not {c.max_df}")


def _check_model(c: Config) -> None:
    _need(all(h >= 1 for h in c.hidden), f"hidden sizes must be positive, not {', '.join(map(str, c.hidden))}")
    _need(all(d >= 1 for d in latent_sizes(c)), "latent_dim must be at least 1 (every layer's size)")
    _one_of(c, "likelihood", LIKELIHOODS)
    _need(0 <= c.classes <= 2**20, f"classes must be in [0, 2**20], not {c.classes}")
    _one_of(c, "posterior_scale", SCALES)
    _one_of(c, "posterior", POSTERIORS)
    _one_of(c, "prior", PRIORS)
    _need(c.pseudo_inputs >= 1, f"pseudo_inputs must be at least 1, not {c.pseudo_inputs}")
    _one_of(c, "flow", FLOWS)
    _at_least(c, "flow_steps", 0)
    _need(c.alpha > 0, f"alpha (the Dirichlet prior's concentration) must be > 0, not {c.alpha}")
    _need(0 <= c.dropout < 1, f"dropout must be in [0, 1), not {c.dropout}")
    _need(c.embedding_dim >= 1, f"embedding_dim must be at least 1, not {c.embedding_dim}")
    _one_of(c, "noise", NOISES)
    _at_least(c, "noise_level", 0)
    _need(c.noise != "masking" or c.noise_level < 1,
          f"noise_level must be below 1 for masking noise (the probability of zeroing an input), not {c.noise_level}")
    _need(c.pixel_channels >= 1, f"pixel_channels must be at least 1, not {c.pixel_channels}")
    _need(c.pixel_layers >= 1, f"pixel_layers must be at least 1, not {c.pixel_layers}")
    _need(c.pixel_kernel >= 3 and c.pixel_kernel % 2 == 1,
          f"pixel_kernel must be an odd number >= 3 (a masked kernel needs a centre), not {c.pixel_kernel}")
    _at_least(c, "pixel_context", 0, " (0 turns the row context off)")
    _need(c.codebook_size >= 1, f"codebook_size must be at least 1, not {c.codebook_size}")
    _need(c.code_dim >= 1, f"code_dim must be at least 1, not {c.code_dim}")
    _at_least(c, "commitment", 0)
    _need(0 <= c.codebook_decay < 1, f"codebook_decay must be in [0, 1), not {c.codebook_decay}")
    _at_least(c, "codebook_restart", 0, " (0 turns restarts off)")
    _need(c.codes is None or c.model == "code-prior", "codes (a vqvae run) applies to model code-prior")


def _check_training(c: Config) -> None:
    _one_of(c, "estimator", ESTIMATORS)
    _need(c.k >= 1, f"k must be at least 1, not {c.k}")
    _at_least(c, "kl_warmup", 0)
    _at_least(c, "free_bits", 0)
    _at_least(c, "beta", 0, " (the weight of the KL, or of the total correlation, in the loss)")
    _need(c.free_bits == 0 or (c.model == "pixel-vae" and c.estimator == "sgvb-b"),
          "free_bits applies to model pixel-vae trained with estimator sgvb-b (a closed-form KL per dimension), "
          f"not model {c.model} with {c.estimator}")
    _at_least(c, "epochs", 0)
    _need(c.batch_size >= 1, f"batch_size must be >= 1, not {c.batch_size}")
    _need(c.lr > 0, f"lr must be positive, not {c.lr}")
    _need(0 < c.lr_decay <= 1, f"lr_decay must be in (0, 1], not {c.lr_decay}")
    _need(0 <= c.ema < 1, f"ema must be in [0, 1), not {c.ema}")
    _at_least(c, "weight_decay", 0)
    _at_least(c, "patience", 0)
    _at_least(c, "max_minutes", 0)
    _at_least(c, "save_every", 0)
    _need(0 <= c.seed < SEED_LIMIT, f"seed must be in [0, 2**32), not {c.seed}")
    _one_of(c, "device", DEVICES)
    _one_of(c, "precision", PRECISIONS)
    _at_least(c, "shards", 0)


def _check_evaluation(c: Config) -> None:
    _need(c.eval_k >= 1, f"eval_k must be at least 1, not {c.eval_k}")
    _at_least(c, "eval_batch", 0, " (0 picks one from memory)")
    _need(c.npmi_window == 0 or c.npmi_window >= 2,
          f"npmi_window must be 0 (whole documents) or a window of at least 2 tokens, not {c.npmi_window}")


CHECKS = {"data": _check_data, "model": _check_model, "training": _check_training, "evaluation": _check_evaluation}


def _check(c: Config) -> None:
    for check in CHECKS.values():
        check(c)
    # a file name's bytes that are not UTF-8 arrive as lone surrogates, which config.toml (UTF-8) cannot hold
    for f in dataclasses.fields(c):
        _need(not any("\ud800" <= ch <= "\udfff" for ch in str(getattr(c, f.name))),
              f"{f.name} must be UTF-8 text (a file name in another encoding?); config.toml cannot hold it")


def latent_sizes(c: Config) -> tuple[int, ...]:
    """The latent layer sizes, bottom first: (latent_dim,) for a one-layer model."""
    return c.latent_dim if isinstance(c.latent_dim, tuple) else (c.latent_dim,)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
KEYS = tuple(_FIELDS)  # every config key, in config.toml's order
SEED_LIMIT = 2**32  # NumPy's seeds are 32-bit
MAX_IMAGE_SIZE = 4096  # folder images are resized to this side at most (16M pixels each)


def _int(key: str, v: Any) -> int:
    """An int64 (what torch counts in) from an int, an integer-valued float or a decimal string; never a bool."""
    if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        v = int(v.strip())
    elif isinstance(v, float) and math.isfinite(v) and v == int(v):
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63:
        return v
    raise ValueError(v)


def _coerce(key: str, value: Any) -> Any:
    """Turn a TOML or command-line value into the field's type; booleans are not numbers, paths are strings."""
    if key not in _FIELDS:
        raise ConfigError(f"unknown config key {key!r}{did_you_mean(key, _FIELDS)} "
                          f"(known: {', '.join(sorted(_FIELDS))})")
    default = _FIELDS[key].default
    try:
        if key in ("hidden", "latent_dim"):
            items = [v for v in value.replace(",", " ").split() if v] if isinstance(value, str) else value
            if key == "latent_dim" and not isinstance(items, (list, tuple)):
                return _int(key, items)
            if not isinstance(items, (list, tuple)):
                raise ValueError(value)
            sizes = tuple(_int(key, v) for v in items)
            if key == "latent_dim":  # one size stays an int, so one-layer configs read and save as before
                if not sizes:
                    raise ValueError(value)
                return sizes[0] if len(sizes) == 1 else sizes
            return sizes
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if isinstance(default, int):
            return _int(key, value)
        if isinstance(default, float):
            v = float(value) if isinstance(value, str) else value
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(value)
            return float(v)
        if default is None and value is None:  # data_dir, out, codes: unset
            return None
        if not isinstance(value, str):  # every other key is a string (a name or a path)
            raise ValueError(value)
        return value
    except (TypeError, ValueError, OverflowError):
        kind = {"hidden": "a list of integers",
                "latent_dim": "an integer, or a list of integers (one per stochastic layer)"}.get(key) or \
            {bool: "true or false", int: "an integer (int64)", float: "a finite number"}.get(type(default), "a string")
        raise ConfigError(f"bad value for {key}: {value!r} (must be {kind})") from None


def from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Build a Config from a dict of overrides on top of `base` (default: defaults)."""
    base = base or Config()
    if not isinstance(values, dict):
        raise ConfigError(f"config values must be a table of keys, not {type(values).__name__}")
    changes = {k: _coerce(k, v) for k, v in values.items()}
    try:
        return dataclasses.replace(base, **changes)
    except TypeError as e:  # wrong type reaching a comparison in _check
        raise ConfigError(str(e)) from None


def config_dir() -> Path:
    """Where the named experiment configs live (shipped with the package)."""
    return Path(__file__).parent / "presets"


def named_configs() -> list[str]:
    """Names of the shipped configs, e.g. 'seed-mlp-vae'."""
    return sorted(p.stem for p in config_dir().glob("*.toml"))


def find(path_or_name: str | Path) -> Path:
    """A TOML file, or the shipped config of that name."""
    path = Path(path_or_name)
    if not path.exists() and (config_dir() / f"{path_or_name}.toml").exists():
        path = config_dir() / f"{path_or_name}.toml"
    if not path.is_file():
        raise ConfigError(f"config {str(path_or_name)!r} not found (shipped: {', '.join(named_configs())})")
    return path


def load(path_or_name: str | Path, base: Config | None = None) -> Config:
    """Load a TOML file, or a shipped config by name."""
    return from_dict(read_values(find(path_or_name)), base)


def read_values(path: str | Path) -> dict[str, Any]:
    """The keys a TOML config file sets, as written (so callers know which keys the user chose)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse `--set key=value` items (values are TOML literals or bare strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set wants key=value, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def to_toml(c: Config) -> str:
    """Resolved config as TOML text (flat keys), by tomli-w: every string (a path with a newline, a control
    character or a quote in it) reads back with tomllib as itself."""
    return tomli_w.dumps(c.to_dict())
