"""Models: the contract (contract.py), one file per family, the priors and the registry.

    contract.py      LatentVariableModel: encode, posterior_sample, log_likelihood, log_prior, prior, sample, embed
    vae.py           VAE: any encoder/decoder pair (flat MLP or conv) around a posterior family and a prior
    autoencoders.py  AE, DAE: reconstruction only, no posterior and no prior
    documents.py     NVDM: the softmax document decoder
    topics.py        ProdLDA and the ETM: theta = softmax(z), product-of-experts or embedded-topic decoders
    dirichlet.py     the Laplace approximation of a Dirichlet prior (prodlda's prior)
    pixel_layers.py  the Gated PixelCNN network (vertical and horizontal stacks, masks of type A and B)
    pixel_context.py the row context: a row-ordered MADE whose map lets every pixel hear all rows above
    pixel_sampling.py exact log p(x) in one pass (Bernoulli or 256-level categorical); sampling pixel by pixel
    pixel_cache.py   the sampler's caches: one new row of the vertical stack per row, one column per pixel
    pixelcnn.py      PixelCNN (an ExactLikelihoodModel) and PixelImage, p(x | c) as a Distribution
    pixel_vae.py     PixelVAE: a VAE whose decoder is a PixelCNN conditioned on z
    priors.py        prior modules returning torch Distributions; PRIORS
    vamp.py          the VampPrior: a mixture of the encoder's posteriors at learned pseudo-inputs
    hvae.py          HVAE: two or more stochastic layers, top-down (Tomczak & Welling 2018)
    flows.py         planar and IAF flow steps with their log-determinants
    flow_vae.py      FlowVAE: the VAE with q(z|x) a Gaussian pushed through a flow
    registry.py      ModelSpec, MODELS, spec, build, likelihood_for, prior_for, estimator_for, kl_note
"""

from .autoencoders import AE, DAE
from .contract import ExactLikelihoodModel, LatentVariableModel, is_exact, is_latent_variable
from .documents import NVDM
from .pixel_vae import PixelVAE
from .pixelcnn import PixelCNN
from .priors import PRIORS
from .registry import MODELS, ModelSpec, build, estimator_for, kl_note, likelihood_for, prior_for, spec
from .topics import ETM, ProdLDA
from .vae import VAE

__all__ = ["AE", "DAE", "ETM", "ExactLikelihoodModel", "LatentVariableModel", "MODELS", "ModelSpec", "NVDM", "PRIORS",
           "PixelCNN", "PixelVAE", "ProdLDA", "VAE", "build", "estimator_for", "is_exact", "is_latent_variable",
           "kl_note", "likelihood_for", "prior_for", "spec"]
