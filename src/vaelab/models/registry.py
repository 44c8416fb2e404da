"""The registry: one line per model, naming its builder and, where it has one, its own estimator or likelihood."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import nn

from .. import corruption
from ..config import Config
from ..errors import ConfigError
from ..networks import MLP, BagEncoder, ConvDecoder, ConvEncoder
from .autoencoders import AE, DAE
from .documents import NVDM, unigram_bias
from .pixel_vae import build_pixel_vae
from .pixelcnn import PixelCNN, image_hw, output_kind
from .vae import VAE


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model, and the estimator / likelihood it must use (None: the config's).

    init(model, data), when given, sets weights from the training data before training starts.
    """

    build: Callable[[Config, tuple[int, ...]], nn.Module]
    estimator: str | None = None
    doc: str = ""
    likelihood: str | None = None
    init: Callable[[nn.Module, object], None] | None = None
    images: bool = False  # models only (1, H, W) images (the autoregressive models): corpora are refused


def _mlp_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    return VAE(MLP(d, c.hidden, 2 * c.latent_dim), MLP(c.latent_dim, tuple(reversed(c.hidden)), d),
               data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood, posterior_scale=c.posterior_scale,
               posterior=c.posterior, prior=c.prior)


def _conv_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    try:
        enc, dec = ConvEncoder(shape, 2 * c.latent_dim), ConvDecoder(c.latent_dim, shape)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return VAE(enc, dec, data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood,
               posterior_scale=c.posterior_scale, posterior=c.posterior, prior=c.prior)


def _mlp_ae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    return AE(MLP(d, c.hidden, c.latent_dim), MLP(c.latent_dim, tuple(reversed(c.hidden)), d),
              data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood)


def _mlp_dae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    return DAE(MLP(d, c.hidden, c.latent_dim), MLP(c.latent_dim, tuple(reversed(c.hidden)), d),
               noise=corruption.from_config(c), data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood)


def _nvdm(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v = math.prod(shape)
    return NVDM(BagEncoder(v, c.hidden, 2 * c.latent_dim), nn.Linear(c.latent_dim, v), data_dim=v,
                latent_dim=c.latent_dim, likelihood="multinomial", posterior_scale=c.posterior_scale,
                posterior=c.posterior, prior=c.prior)


def _pixelcnn(c: Config, shape: tuple[int, ...]) -> nn.Module:
    hw = image_hw(shape, c.model)
    kind = output_kind(c.likelihood, c.binarize, c.model)
    return PixelCNN(hw, channels=c.pixel_channels, layers=c.pixel_layers, kernel=c.pixel_kernel, likelihood=kind)


COND_CHANNELS = 16  # channels of the PixelVAE's conditioning map m(z)


def _pixel_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    hw = image_hw(shape, c.model)
    kind = output_kind(c.likelihood, c.binarize, c.model)
    d, cond_shape = math.prod(shape), (COND_CHANNELS, *hw)
    if hw[0] % 4 == 0 and hw[1] % 4 == 0:  # seed 002's conv encoder, and its decoder as z -> m(z)
        enc, to_map = ConvEncoder(shape, 2 * c.latent_dim), ConvDecoder(c.latent_dim, cond_shape)
    else:
        enc, to_map = MLP(d, c.hidden, 2 * c.latent_dim), MLP(c.latent_dim, c.hidden, math.prod(cond_shape))
    model = build_pixel_vae(enc, to_map, hw, channels=c.pixel_channels, layers=c.pixel_layers, kernel=c.pixel_kernel,
                            cond_channels=COND_CHANNELS, likelihood=kind, latent_dim=c.latent_dim,
                            posterior_scale=c.posterior_scale, posterior=c.posterior, prior=c.prior)
    model.free_bits = c.free_bits  # read by objectives.sgvb_b's loss; the reported ELBO stays the bound
    return model


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(_mlp_vae, doc="MLP encoder/decoder, Gaussian posterior (seed 001)"),
    "conv-vae": ModelSpec(_conv_vae, doc="convolutional encoder/decoder (seed 002)"),
    "ae": ModelSpec(_mlp_ae, estimator="ae", doc="plain autoencoder, reconstruction only"),
    "iwae": ModelSpec(_mlp_vae, estimator="iwae", doc="the MLP VAE trained on the IWAE-k bound (seed 000 eq. 17.24)"),
    "dae": ModelSpec(_mlp_dae, estimator="dae", doc="stacked denoising autoencoder, clean target (seed 000 §2.3)"),
    "nvdm": ModelSpec(_nvdm, likelihood="multinomial", init=unigram_bias,
                      doc="neural variational document model: softmax decoder R z + b (seed 000 §2.14)"),
    "pixelcnn": ModelSpec(_pixelcnn, estimator="exact", images=True,
                          doc="Gated PixelCNN: exact log p(x) = sum_i log p(x_i | x_<i), no latent (seed 003)"),
    "pixel-vae": ModelSpec(_pixel_vae, images=True, doc="VAE whose decoder is a Gated PixelCNN conditioned on z"),
}


def spec(name: str) -> ModelSpec:
    """The registry entry for `name`, with a clear error for unknown names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name]


def build(c: Config, shape: tuple[int, ...], data: object | None = None) -> nn.Module:
    """Build the configured model for examples of the given shape (initialised from data when given)."""
    s = spec(c.model)
    model = s.build(c, tuple(shape))
    if data is not None and s.init is not None:
        s.init(model, data)
    return model


def likelihood_for(c: Config) -> str:
    """The likelihood a run uses: the model's own if it has one, else the config's."""
    s = spec(c.model)
    forced = s.likelihood
    if c.likelihood == "categorical" and not s.images:
        raise ConfigError(f"the categorical likelihood (256 grey levels) needs an autoregressive model "
                          f"(pixelcnn, pixel-vae), not {c.model!r}")
    if forced is not None and c.likelihood not in (forced, Config.likelihood):
        raise ConfigError(f"model {c.model!r} always uses the {forced} likelihood, not {c.likelihood!r}")
    return forced or c.likelihood


def estimator_for(c: Config) -> str:
    """The estimator a run trains with: the model's own if it has one, else the config's."""
    forced = spec(c.model).estimator
    if forced is None and c.estimator in ("ae", "dae"):
        raise ConfigError(f"estimator {c.estimator!r} needs a deterministic model (ae, dae), not {c.model!r}")
    if forced is None and c.estimator == "exact":
        raise ConfigError(f"estimator 'exact' needs a model with an exact likelihood (pixelcnn), not {c.model!r}")
    return forced or c.estimator
