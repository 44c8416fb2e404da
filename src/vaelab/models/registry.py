"""The registry: one line per model, naming its builder and, where it has one, its own estimator or likelihood."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import nn

from .. import corruption
from ..config import Config
from ..errors import ConfigError, unknown
from ..networks import (MLP, BagEncoder, ConvDecoder, ConvEncoder, EmbeddedTopics, ProductOfExperts, Proportions,
                        TopicEncoder)
from .autoencoders import AE, DAE
from .dirichlet import DirichletLaplace
from .documents import NVDM, unigram_bias
from .topics import ETM, ProdLDA, load_embeddings, unigram_shift
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
    prior: str | None = None  # the model's own prior (as likelihood), e.g. prodlda's dirichlet-laplace


def _prior(c: Config) -> str | nn.Module:
    """The prior module or name for c: a Dirichlet-Laplace prior gets the config's alpha."""
    kind = prior_for(c)
    return DirichletLaplace(c.latent_dim, alpha=c.alpha) if kind == "dirichlet-laplace" else kind


def _mlp_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    return VAE(MLP(d, c.hidden, 2 * c.latent_dim), MLP(c.latent_dim, tuple(reversed(c.hidden)), d),
               data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood, posterior_scale=c.posterior_scale,
               posterior=c.posterior, prior=_prior(c))


def _conv_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d = math.prod(shape)
    try:
        enc, dec = ConvEncoder(shape, 2 * c.latent_dim), ConvDecoder(c.latent_dim, shape)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return VAE(enc, dec, data_dim=d, latent_dim=c.latent_dim, likelihood=c.likelihood,
               posterior_scale=c.posterior_scale, posterior=c.posterior, prior=_prior(c))


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
                posterior=c.posterior, prior=_prior(c))


def _prodlda(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v = math.prod(shape)
    decoder = nn.Sequential(Proportions(c.dropout), ProductOfExperts(c.latent_dim, v, c.batch_norm))
    return ProdLDA(TopicEncoder(v, c.hidden, c.latent_dim, c.dropout, c.batch_norm), decoder, data_dim=v,
                   latent_dim=c.latent_dim, likelihood="multinomial", posterior_scale=c.posterior_scale,
                   posterior=c.posterior, prior=_prior(c))


def _etm(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v = math.prod(shape)
    decoder = nn.Sequential(Proportions(c.dropout),
                            EmbeddedTopics(c.latent_dim, v, c.embedding_dim, fixed_words=bool(c.embeddings)))
    model = ETM(TopicEncoder(v, c.hidden, c.latent_dim, c.dropout, c.batch_norm), decoder, data_dim=v,
                latent_dim=c.latent_dim, likelihood="multinomial", posterior_scale=c.posterior_scale,
                posterior=c.posterior, prior=_prior(c))
    model.embedding_file = c.embeddings  # read by load_embeddings when training starts
    return model


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(_mlp_vae, doc="MLP encoder/decoder, Gaussian posterior (seed 001)"),
    "conv-vae": ModelSpec(_conv_vae, doc="convolutional encoder/decoder (seed 002)"),
    "ae": ModelSpec(_mlp_ae, estimator="ae", doc="plain autoencoder, reconstruction only"),
    "iwae": ModelSpec(_mlp_vae, estimator="iwae", doc="the MLP VAE trained on the IWAE-k bound (seed 000 eq. 17.24)"),
    "dae": ModelSpec(_mlp_dae, estimator="dae", doc="stacked denoising autoencoder, clean target (seed 000 §2.3)"),
    "nvdm": ModelSpec(_nvdm, likelihood="multinomial", init=unigram_bias,
                      doc="neural variational document model: softmax decoder R z + b (seed 000 §2.14)"),
    "prodlda": ModelSpec(_prodlda, likelihood="multinomial", init=unigram_shift, prior="dirichlet-laplace",
                         doc="ProdLDA: logistic-normal theta, Dirichlet-Laplace prior, softmax(BN(beta theta))"),
    "etm": ModelSpec(_etm, likelihood="multinomial", init=load_embeddings,
                     doc="embedded topic model: theta^T softmax(rho alpha_k), word embeddings learned or loaded"),
}


def spec(name: str) -> ModelSpec:
    """The registry entry for `name`, with a clear error for unknown names."""
    if name not in MODELS:
        raise ConfigError(unknown("model", name, tuple(MODELS)))
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
    forced = spec(c.model).likelihood
    if forced is not None and c.likelihood not in (forced, Config.likelihood):
        raise ConfigError(f"model {c.model!r} always uses the {forced} likelihood, not {c.likelihood!r}")
    return forced or c.likelihood


def prior_for(c: Config) -> str:
    """The prior a run uses: the model's own if it has one, else the config's."""
    forced = spec(c.model).prior
    if forced is not None and c.prior not in (forced, Config.prior):
        raise ConfigError(f"model {c.model!r} always uses the {forced} prior, not {c.prior!r}")
    return forced or c.prior


def estimator_for(c: Config) -> str:
    """The estimator a run trains with: the model's own if it has one, else the config's."""
    forced = spec(c.model).estimator
    if forced is None and c.estimator in ("ae", "dae"):
        raise ConfigError(f"estimator {c.estimator!r} needs a deterministic model (ae, dae), not {c.model!r}")
    return forced or c.estimator
