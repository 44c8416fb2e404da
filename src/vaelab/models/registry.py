"""The registry: one line per model, naming its builder and, where it has one, its own estimator or likelihood."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..config.schema import Config, latent_sizes
from ..distributions import corruption, families
from ..errors import ConfigError, unknown
from . import code_prior, priors, user_networks, vqvae
from .autoencoders import AE, DAE
from .btcvae import BetaTCVAE, set_dataset_size
from .conditional import ConditionalVAE
from .contract import LatentVariableModel
from .dirichlet import DirichletLaplace
from .factorvae import FactorVAE
from .flow_vae import FlowVAE
from .hvae import HVAE
from .networks import (
    MLP,
    BagEncoder,
    ConvDecoder,
    ConvEncoder,
    EmbeddedTopics,
    LabelledConvEncoder,
    ProductOfExperts,
    Proportions,
    TopicEncoder,
)
from .nvdm import NVDM, unigram_bias
from .pixel.pixel_vae import build_pixel_vae
from .pixel.pixelcnn import PixelCNN, image_hw, output_kind
from .topic_models import ETM, ProdLDA, load_embeddings, unigram_shift
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
    images: bool = False  # models only (C, H, W) images (the autoregressive models): corpora are refused


def _one_layer(c: Config) -> int:
    """The latent size of a one-layer model; a list of sizes is for hierarchical models only."""
    if len(latent_sizes(c)) > 1:
        raise ConfigError(f"latent_dim = {list(c.latent_dim)} gives several stochastic layers, which only "
                          f"the hvae models have; {c.model!r} has one (give one size)")
    return latent_sizes(c)[0]


def _prior(c: Config, dz: int, d: int) -> nn.Module:
    """The prior module for c (the model's own if it fixes one):
    Dirichlet-Laplace gets alpha, vamp its pseudo-inputs."""
    kind = prior_for(c)
    if kind == "dirichlet-laplace":
        return DirichletLaplace(dz, alpha=c.alpha)
    return priors.build(kind, dz, d, pseudo_inputs=c.pseudo_inputs)


def _mlp_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d, dz = math.prod(shape), _one_layer(c)
    kw = dict(data_dim=d, latent_dim=dz, likelihood=c.likelihood, posterior_scale=c.posterior_scale,
              posterior=c.posterior, prior=_prior(c, dz, d))
    if c.conditional:  # Sohn et al. 2015: [x, y] in, [z, y] out; y one-hot of width c.classes
        k = c.classes
        return ConditionalVAE(MLP(d + k, c.hidden, 2 * dz), MLP(dz + k, tuple(reversed(c.hidden)), d), classes=k, **kw)
    if c.flow == "none":
        return VAE(MLP(d, c.hidden, 2 * dz), MLP(dz, tuple(reversed(c.hidden)), d), **kw)
    context = c.hidden[-1] if c.hidden else 2 * dz  # the flow's context h: as wide as the encoder's last layer
    return FlowVAE(MLP(d, c.hidden, 2 * dz + context), MLP(dz, tuple(reversed(c.hidden)), d), kind=c.flow,
                   steps=c.flow_steps, context=context, **kw)


def _mlp_latent(cls: type, c: Config, shape: tuple[int, ...]) -> nn.Module:
    """The MLP VAE's networks and posterior around another VAE class (btcvae, factorvae)."""
    d, dz = math.prod(shape), _one_layer(c)
    return cls(MLP(d, c.hidden, 2 * dz), MLP(dz, tuple(reversed(c.hidden)), d), data_dim=d, latent_dim=dz,
               likelihood=c.likelihood, posterior_scale=c.posterior_scale, posterior=c.posterior,
               prior=_prior(c, dz, d))


def _hvae(c: Config, shape: tuple[int, ...], conv: bool = False) -> nn.Module:
    sizes, d = latent_sizes(c), math.prod(shape)
    if len(sizes) < 2:
        raise ConfigError(f"model {c.model} needs two or more layer sizes, bottom first (e.g. latent_dim = 40,20), "
                          f"not {c.latent_dim}")
    if c.posterior != "gaussian":
        raise ConfigError(f"model {c.model} has Gaussian posteriors at every layer, not {c.posterior!r}")
    kw = dict(likelihood=c.likelihood, posterior_scale=c.posterior_scale, prior=_prior(c, sizes[-1], d))
    if not conv:
        return HVAE.mlp(shape, sizes, c.hidden, **kw)
    try:
        return HVAE.conv(shape, sizes, c.hidden, **kw)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _conv_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d, dz, k = math.prod(shape), _one_layer(c), c.classes if c.conditional else 0
    try:  # conditional (Sohn et al. 2015): the label joins the encoder's dense head and the decoder's input
        enc = LabelledConvEncoder(shape, k, 2 * dz) if k else ConvEncoder(shape, 2 * dz)
        dec = ConvDecoder(dz + k, shape)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if k:
        return ConditionalVAE(enc, dec, data_dim=d, latent_dim=dz, classes=k, likelihood=c.likelihood,
                              posterior_scale=c.posterior_scale, posterior=c.posterior, prior=_prior(c, dz, d))
    return VAE(enc, dec, data_dim=d, latent_dim=dz, likelihood=c.likelihood,
               posterior_scale=c.posterior_scale, posterior=c.posterior, prior=_prior(c, dz, d))


def _mlp_ae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d, dz = math.prod(shape), _one_layer(c)
    return AE(MLP(d, c.hidden, dz), MLP(dz, tuple(reversed(c.hidden)), d),
              data_dim=d, latent_dim=dz, likelihood=c.likelihood)


def _mlp_dae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    d, dz = math.prod(shape), _one_layer(c)
    return DAE(MLP(d, c.hidden, dz), MLP(dz, tuple(reversed(c.hidden)), d),
               noise=corruption.from_config(c), data_dim=d, latent_dim=dz, likelihood=c.likelihood)


def _nvdm(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v, dz = math.prod(shape), _one_layer(c)
    return NVDM(BagEncoder(v, c.hidden, 2 * dz), nn.Linear(dz, v), data_dim=v,
                latent_dim=dz, likelihood="multinomial", posterior_scale=c.posterior_scale,
                posterior=c.posterior, prior=_prior(c, dz, v))


def _prodlda(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v, k = math.prod(shape), _one_layer(c)
    decoder = nn.Sequential(Proportions(c.dropout), ProductOfExperts(k, v, c.batch_norm))
    return ProdLDA(TopicEncoder(v, c.hidden, k, c.dropout, c.batch_norm), decoder, data_dim=v,
                   latent_dim=k, likelihood="multinomial", posterior_scale=c.posterior_scale,
                   posterior=c.posterior, prior=_prior(c, k, v))


def _etm(c: Config, shape: tuple[int, ...]) -> nn.Module:
    v, k = math.prod(shape), _one_layer(c)
    decoder = nn.Sequential(Proportions(c.dropout),
                            EmbeddedTopics(k, v, c.embedding_dim, fixed_words=bool(c.embeddings)))
    model = ETM(TopicEncoder(v, c.hidden, k, c.dropout, c.batch_norm), decoder, data_dim=v,
                latent_dim=k, likelihood="multinomial", posterior_scale=c.posterior_scale,
                posterior=c.posterior, prior=_prior(c, k, v))
    model.embedding_file = c.embeddings  # read by load_embeddings when training starts
    return model


def _pixelcnn(c: Config, shape: tuple[int, ...]) -> nn.Module:
    hw = image_hw(shape, c.model, c.pixel_channels)
    kind = output_kind(c.likelihood, c.binarize, c.model)
    return PixelCNN(hw, channels=c.pixel_channels, layers=c.pixel_layers, kernel=c.pixel_kernel, likelihood=kind,
                    context=c.pixel_context, colours=shape[0])


COND_CHANNELS = 16  # channels of the PixelVAE's conditioning map m(z)


def _pixel_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    hw = image_hw(shape, c.model, c.pixel_channels)
    kind = output_kind(c.likelihood, c.binarize, c.model)
    d, cond_shape = math.prod(shape), (COND_CHANNELS, *hw)
    if hw[0] % 4 == 0 and hw[1] % 4 == 0:  # the conv VAE's encoder, and its decoder as z -> m(z)
        enc, to_map = ConvEncoder(shape, 2 * c.latent_dim), ConvDecoder(c.latent_dim, cond_shape)
    else:
        enc, to_map = MLP(d, c.hidden, 2 * c.latent_dim), MLP(c.latent_dim, c.hidden, math.prod(cond_shape))
    model = build_pixel_vae(enc, to_map, hw, channels=c.pixel_channels, layers=c.pixel_layers, kernel=c.pixel_kernel,
                            cond_channels=COND_CHANNELS, likelihood=kind, latent_dim=c.latent_dim,
                            context=c.pixel_context, colours=shape[0],
                            posterior_scale=c.posterior_scale, posterior=c.posterior, prior=c.prior)
    model.free_bits = c.free_bits  # read by objectives.sgvb_b's loss; the reported ELBO stays the bound
    return model


# the one list of model names: the CLI reads these keys from this source (config/choices.py), so they stay literals
MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(_mlp_vae, doc="MLP encoder/decoder, Gaussian posterior (Kingma & Welling 2014)"),
    "conv-vae": ModelSpec(_conv_vae, doc="convolutional encoder/decoder (two conv layers each way)"),
    "ae": ModelSpec(_mlp_ae, estimator="ae", doc="plain autoencoder, reconstruction only"),
    "iwae": ModelSpec(_mlp_vae, estimator="iwae", doc="the MLP VAE trained on the IWAE-k bound (Burda et al. 2016)"),
    "dae": ModelSpec(_mlp_dae, estimator="dae",
                     doc="stacked denoising autoencoder, clean target (Vincent et al. 2010)"),
    "hvae": ModelSpec(_hvae, doc="hierarchical VAE, top-down p(z2) p(z1|z2) p(x|z1,z2), q(z2|x) q(z1|x,z2) "
                                 "(Tomczak & Welling 2018); --latent-dim 40,20"),
    "conv-hvae": ModelSpec(lambda c, shape: _hvae(c, shape, conv=True),
                           doc="hvae with gated conv encoders for x in each posterior "
                               "and a gated transposed-conv decoder"),
    "nvdm": ModelSpec(_nvdm, likelihood="multinomial", init=unigram_bias,
                      doc="neural variational document model: softmax decoder R z + b (Miao et al. 2016)"),
    "prodlda": ModelSpec(_prodlda, likelihood="multinomial", init=unigram_shift, prior="dirichlet-laplace",
                         doc="ProdLDA: logistic-normal theta, Dirichlet-Laplace prior, softmax(BN(beta theta))"),
    "etm": ModelSpec(_etm, likelihood="multinomial", init=load_embeddings,
                     doc="embedded topic model: theta^T softmax(rho alpha_k), word embeddings learned or loaded"),
    "pixelcnn": ModelSpec(_pixelcnn, estimator="exact", images=True,
                          doc="Gated PixelCNN: exact log p(x) = sum_i log p(x_i | x_<i), no latent "
                              "(van den Oord et al. 2016)"),
    "pixel-vae": ModelSpec(_pixel_vae, images=True, doc="VAE whose decoder is a Gated PixelCNN conditioned on z"),
    "vqvae": ModelSpec(vqvae.build, estimator="vq", images=True, doc="VQ-VAE (van den Oord et al. 2017): EMA "
                       "codebook, commitment loss, straight-through; reconstruction only (no bound)"),
    "code-prior": ModelSpec(code_prior.build, estimator="sgvb-a", images=True, init=code_prior.load_codes,
                            doc="Gated PixelCNN prior over a vqvae run's codes (codes = RUN): the VQ bound "
                                "log p(x|z_q) + log p(z_q)"),
    "btcvae": ModelSpec(lambda c, shape: _mlp_latent(BetaTCVAE, c, shape), estimator="btcvae", init=set_dataset_size,
                        doc="β-TCVAE (Chen et al. 2018): the MLP VAE, --beta weighs the total correlation"),
    "factorvae": ModelSpec(lambda c, shape: _mlp_latent(FactorVAE, c, shape), estimator="factorvae",
                           doc="FactorVAE (Kim & Mnih 2018): the MLP VAE and a TC discriminator, --beta is γ"),
}


def spec(name: str) -> ModelSpec:
    """The registry entry for `name`, with a clear error for unknown names."""
    if name not in MODELS:
        raise ConfigError(unknown("model", name, tuple(MODELS)))
    return MODELS[name]


def build(c: Config, shape: tuple[int, ...], data: object | None = None) -> nn.Module:
    """Build the configured model for examples of the given shape (initialised from data when given)."""
    s = spec(c.model)
    if c.flow != "none" and s.build is not _mlp_vae:
        raise ConfigError(f"flow {c.flow} is a posterior of the MLP VAE (model vae or iwae), not of {c.model!r}")
    if c.conditional and (s.build not in (_mlp_vae, _conv_vae) or c.flow != "none" or prior_for(c) == "vamp"):
        raise ConfigError(f"conditional = true is the VAE's (model vae, iwae or conv-vae, no flow, prior normal or "
                          f"laplace), not {c.model!r}" + (f" with flow {c.flow}" if c.flow != "none" else "")
                          + (" with the vamp prior" if prior_for(c) == "vamp" else ""))
    if c.conditional and c.classes < 2:
        raise ConfigError(f"conditional = true needs the width of its one-hot labels, classes >= 2, not {c.classes} "
                          f"(train sets it from the data's labels; elsewhere set classes = K)")
    model = _user_vae(c, tuple(shape)) if c.encoder or c.decoder else s.build(c, tuple(shape))
    model.data_shape = tuple(shape)  # an example's natural shape: encode and model(x) take (B, *data_shape) too
    if isinstance(model, LatentVariableModel):
        model.beta = c.beta  # read by the objectives' loss (objectives.kl_weight); never by the bound
    elif c.beta != 1.0:
        raise ConfigError(f"beta weighs a KL term, which model {c.model!r} has none of")
    if data is not None and s.init is not None:
        s.init(model, data)
    prior_init = getattr(getattr(model, "latent_prior", None), "init_from_data", None)
    if data is not None and prior_init is not None:
        prior_init(data)  # the VampPrior's pseudo-inputs start at training examples
    return model


def _user_vae(c: Config, shape: tuple[int, ...]) -> nn.Module:
    """The VAE around the user's own encoder and decoder (models/user_networks.py)."""
    if c.model not in ("vae", "iwae") or c.flow != "none":
        raise ConfigError(f"your own encoder and decoder go into model vae or iwae with flow none, not "
                          f"model {c.model!r}{f' with flow {c.flow}' if c.flow != 'none' else ''}")
    if c.conditional:
        raise ConfigError("conditional = true builds the VAE's own networks with the label as an input; "
                          "your own encoder and decoder are not conditioned yet")
    dz, d = _one_layer(c), math.prod(shape)
    return user_networks.build(c, shape, likelihood_for(c), _prior(c, dz, d))


def kl_note(c: Config) -> str | None:
    """One line saying why KL(q || p) is Monte Carlo for this config (SGVB-B then runs as SGVB-A);
    None if closed form."""
    why = [what for what, yes in (("the posterior of a hierarchy", len(latent_sizes(c)) > 1),
                                  (f"a {c.flow} flow posterior", c.flow != "none"),
                                  ("the VampPrior", c.prior == "vamp")) if yes]
    if why:
        return f"KL(q || p) has no closed form with {' and '.join(why)}: using the Monte-Carlo KL (SGVB-A)"
    if families.has_analytic_kl(c.posterior, priors.build(c.prior, 2, 1)()):  # the prior's type decides
        return None
    return (f"KL({c.posterior} posterior || {c.prior} prior) has no closed form in torch.distributions: "
            "using the Monte-Carlo KL (SGVB-A)")


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
    if forced is None and c.estimator == "vq":
        raise ConfigError(f"estimator 'vq' needs a model with a codebook (vqvae), not {c.model!r}")
    if forced is None and c.estimator in ("btcvae", "factorvae"):
        raise ConfigError(f"estimator {c.estimator!r} is the objective of model {c.estimator}, not of {c.model!r}")
    if forced is None and c.estimator == "exact":
        raise ConfigError(f"estimator 'exact' needs a model with an exact likelihood (pixelcnn), not {c.model!r}")
    return forced or c.estimator
