"""The names a config value may take: one list each, read by the config's checks, the CLI's --help and errors.

Torch-free, so the CLI can offer them before it imports the library.
"""

# multinomial: word counts; categorical: 256 grey levels, for the autoregressive models (pixelcnn, pixel-vae)
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned", "multinomial", "categorical")
ESTIMATORS = ("sgvb-a", "sgvb-b", "iwae", "ae", "dae", "exact")  # ae, dae, exact: only for the models that fix them
SCALES = ("exp", "softplus", "relu")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "tf32", "bf16")  # see runtime/precision.py
POSTERIORS = ("gaussian", "laplace", "logistic", "student-t", "gumbel")  # see distributions/families.py
PRIORS = ("normal", "laplace", "dirichlet-laplace", "vamp")  # dirichlet-laplace: Laplace approximation of
# Dirichlet(alpha); vamp: the VampPrior, a mixture of q(z|u_k) at learned pseudo-inputs
FLOWS = ("none", "planar", "iaf")  # normalizing flows on top of the Gaussian posterior (models/flows.py)
NOISES = ("masking", "gaussian")  # denoising autoencoder corruption, see distributions/corruption.py
# names the CLI offers before it imports torch (`vaelab --help` stays fast);
# their code is in reports/views.py, baselines/mixtures.py
PLOT_KINDS = ("curves", "recon", "samples", "latent", "manifold", "interp", "topics", "latent-epochs")
# models.MODELS' names (test_contract checks they agree)
MODELS = ("vae", "conv-vae", "ae", "iwae", "dae", "hvae", "conv-hvae", "nvdm", "prodlda", "etm", "pixelcnn",
          "pixel-vae")
# every --data value: the one list `--help`, error messages and data/ read (data/images.py, data/corpus.py)
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "photo-patches", "npz:PATH", "folder:PATH", "npy:DIR")
CORPORA = ("bbc_news", "corpus:PATH", "20newsgroups")
DATASETS = IMAGE_DATASETS + CORPORA
BASELINES = {
    "single": "one independent Bernoulli per dimension, one full/diagonal Gaussian, "
              "or one categorical (256 levels) per pixel",
    "mixture": "a mixture by EM: of Bernoulli products, of per-pixel categoricals, or scikit-learn's GaussianMixture",
    "lda": "scikit-learn's latent Dirichlet allocation on a corpus: perplexity and NPMI",
}
COVARIANCES = ("full", "diag")

