"""Models: the contract (contract.py), one file per family, their networks, the priors and the registry.

    contract.py      LatentVariableModel: encode, posterior_sample, log_likelihood, log_prior, prior, sample, embed
    registry.py      ModelSpec, MODELS, spec, build, likelihood_for, prior_for, estimator_for, kl_note
    networks.py      plain nn.Modules returning raw distribution parameters (MLP, conv)
    gated_conv.py    gated (a * sigmoid(b)) conv encoder and transposed-conv decoder (the conv HVAE's networks)
    vae.py           VAE: any encoder/decoder pair (flat MLP or conv) around a posterior family and a prior
    autoencoders.py  AE, DAE: reconstruction only, no posterior and no prior
    nvdm.py          NVDM: the softmax document decoder
    topic_models.py  ProdLDA and the ETM: theta = softmax(z), product-of-experts or embedded-topic decoders
    dirichlet.py     the Laplace approximation of a Dirichlet prior (prodlda's prior)
    priors.py        prior modules returning torch Distributions; PRIORS
    vamp.py          the VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs
    hvae.py          HVAE: two or more stochastic layers, top-down (Tomczak & Welling 2018)
    flows.py         planar and IAF flow steps with their log-determinants
    flow_vae.py      FlowVAE: the VAE with q(z|x) a Gaussian pushed through a flow
    vqvae.py         VQVAE: a conv encoder's grid quantised against an EMA codebook (straight-through), no bound
    code_prior.py    CodePrior: a Gated PixelCNN prior over a trained VQ-VAE's codes, the VQ bound
    user_networks.py your own encoder/decoder classes (pkg.module:Class + JSON arguments) inside the VAE
    pixel/           the Gated PixelCNN (layers, row context, exact log p(x) and sampling, caches), PixelCNN, PixelVAE
"""

from .autoencoders import AE, DAE
from .contract import ExactLikelihoodModel, Forward, LatentVariableModel, is_exact, is_latent_variable
from .nvdm import NVDM
from .pixel.pixel_vae import PixelVAE
from .pixel.pixelcnn import PixelCNN
from .priors import PRIORS
from .registry import MODELS, ModelSpec, build, estimator_for, kl_note, likelihood_for, prior_for, spec
from .topic_models import ETM, ProdLDA
from .vae import VAE

__all__ = ["AE", "DAE", "ETM", "ExactLikelihoodModel", "Forward", "LatentVariableModel", "MODELS", "ModelSpec", "NVDM",
           "PRIORS", "PixelCNN", "PixelVAE", "ProdLDA", "VAE", "build", "estimator_for", "is_exact",
           "is_latent_variable", "kl_note", "likelihood_for", "prior_for", "spec"]
