"""Models: a network pair plus the distributions they parameterise, and the registry.

A latent-variable model exposes
    encode(x) -> q(z|x)   (a torch Distribution, batch shape (B,), event (Dz,))
    decode(z) -> p(x|z)   (batch shape z.shape[:-1], event (D,))
    prior()   -> p(z)
    embed(x)  -> a point code per example (the posterior mean), for plots.
Objectives use nothing else, so adding a model never touches the estimators or the trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.distributions import Distribution

from . import corruption, families
from . import distributions as dist
from .config import Config
from .documents import unigram_log_probs
from .errors import ConfigError
from .networks import MLP, BagEncoder, ConvDecoder, ConvEncoder


class VAE(nn.Module):
    """Latent-variable model around any encoder/decoder network (Gaussian posterior and prior by default)."""

    stochastic = True

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, data_dim: int, latent_dim: int,
                 likelihood: str = "bernoulli", posterior_scale: str = "exp", posterior: str = "gaussian",
                 prior: str = "normal"):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.likelihood, self.posterior_scale = likelihood, posterior_scale
        self.posterior, self.prior_kind = posterior, prior
        # one log-variance per data dimension, shared by all examples
        self.logvar = nn.Parameter(torch.zeros(data_dim)) if likelihood == "gaussian-learned" else None
        # the prior's parameters follow the model across devices but are not weights to save
        self.register_buffer("prior_loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("prior_scale", torch.ones(latent_dim), persistent=False)

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x): a diagonal Gaussian, or another location-scale family (families.py)."""
        raw = self.encoder(x).float()  # float: see ObjectiveStep
        if self.posterior == "gaussian":
            return dist.gaussian_posterior(raw, self.posterior_scale)
        return families.posterior(self.posterior, raw, self.posterior_scale)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z of shape (..., Dz)."""
        return dist.likelihood(self.likelihood, self.decoder(z).float(), self.logvar)

    def prior(self) -> Distribution:
        """p(z) = N(0, I), or a standard Laplace."""
        if self.prior_kind == "normal":
            return dist.diagonal_normal(self.prior_loc, self.prior_scale)
        return families.prior(self.prior_kind, self.prior_loc, self.prior_scale)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean E_q[z]."""
        return self.encode(x).mean


class AE(VAE):
    """Deterministic autoencoder: the code is a point, there is no prior and no bound on log p(x)."""

    stochastic = False

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x)."""
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> Distribution:
        raise TypeError("a plain autoencoder has no posterior q(z|x); use embed()")

    def prior(self) -> Distribution:
        raise TypeError("a plain autoencoder has no prior p(z)")


class DAE(AE):
    """Denoising autoencoder (seed 000 eqs. 17.3-17.4): encodes a corrupted x~, is scored against the clean x."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, noise: corruption.Noise, **kw):
        super().__init__(encoder, decoder, **kw)
        self.noise = noise

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """x~ ~ q_D(x~ | x), from the global (seeded, checkpointed) RNG."""
        return self.noise(x)


class NVDM(VAE):
    """Neural variational document model (seed 000 §2.14; Miao et al. 2016).

    q(z|d) is a Gaussian from an MLP on the counts, p(z) = N(0, I), and the decoder is the
    seed's softmax with energy E(x_i; z) = -z^T R x_i - b_{x_i}: logits R z + b, one linear layer.
    """

    @property
    def topic_weights(self) -> torch.Tensor:
        """R, (|V|, K): column k says how moving z_k up raises or lowers each word's log-probability."""
        return self.decoder.weight


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


@torch.no_grad()
def _unigram_bias(model: nn.Module, data) -> None:
    """b = log of the training unigram frequencies (add-one smoothed), so training starts at the unigram model."""
    model.decoder.bias.copy_(unigram_log_probs(data.train).to(model.decoder.bias))


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(_mlp_vae, doc="MLP encoder/decoder, Gaussian posterior (seed 001)"),
    "conv-vae": ModelSpec(_conv_vae, doc="convolutional encoder/decoder (seed 002)"),
    "ae": ModelSpec(_mlp_ae, estimator="ae", doc="plain autoencoder, reconstruction only"),
    "iwae": ModelSpec(_mlp_vae, estimator="iwae", doc="the MLP VAE trained on the IWAE-k bound (seed 000 eq. 17.24)"),
    "dae": ModelSpec(_mlp_dae, estimator="dae", doc="stacked denoising autoencoder, clean target (seed 000 §2.3)"),
    "nvdm": ModelSpec(_nvdm, likelihood="multinomial", init=_unigram_bias,
                      doc="neural variational document model: softmax decoder R z + b (seed 000 §2.14)"),
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
    forced = spec(c.model).likelihood
    if forced is not None and c.likelihood not in (forced, Config.likelihood):
        raise ConfigError(f"model {c.model!r} always uses the {forced} likelihood, not {c.likelihood!r}")
    return forced or c.likelihood


def estimator_for(c: Config) -> str:
    """The estimator a run trains with: the model's own if it has one, else the config's."""
    forced = spec(c.model).estimator
    if forced is None and c.estimator == "ae":
        raise ConfigError(f"estimator 'ae' needs a deterministic model, not {c.model!r}")
    return forced or c.estimator
