"""Models: the contract (contract.py), one file per family, the priors and the registry.

    contract.py      LatentVariableModel: encode, posterior_sample, log_likelihood, log_prior, prior, sample, embed
    vae.py           VAE: any encoder/decoder pair (flat MLP or conv) around a posterior family and a prior
    autoencoders.py  AE, DAE: reconstruction only, no posterior and no prior
    documents.py     NVDM: the softmax document decoder
    topics.py        ProdLDA and the ETM: theta = softmax(z), product-of-experts or embedded-topic decoders
    dirichlet.py     the Laplace approximation of a Dirichlet prior (prodlda's prior)
    priors.py        prior modules returning torch Distributions; PRIORS
    vamp.py          the VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs
    hvae.py          HVAE: two or more stochastic layers, top-down (Tomczak & Welling 2018)
    flows.py         planar and IAF flow steps with their log-determinants
    flow_vae.py      FlowVAE: the VAE with q(z|x) a Gaussian pushed through a flow
    registry.py      ModelSpec, MODELS, spec, build, likelihood_for, prior_for, estimator_for, kl_note
"""

from .autoencoders import AE, DAE
from .contract import LatentVariableModel, is_latent_variable
from .documents import NVDM
from .priors import PRIORS
from .registry import MODELS, ModelSpec, build, estimator_for, kl_note, likelihood_for, prior_for, spec
from .topics import ETM, ProdLDA
from .vae import VAE

__all__ = ["AE", "DAE", "ETM", "LatentVariableModel", "MODELS", "ModelSpec", "NVDM", "PRIORS", "ProdLDA", "VAE",
           "build", "estimator_for", "is_latent_variable", "kl_note", "likelihood_for", "prior_for", "spec"]
