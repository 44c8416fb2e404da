"""The names a config value may take: one list each, read by the config's checks, the CLI's --help and errors.

Torch-free, so the CLI can offer them before it imports the library. The model and prior names are the keys of
their registries (models/registry.py MODELS, models/priors.py PRIORS), read from those files' source rather than
imported (the registries import torch): a new model or prior is its file and one registry line, nothing here.
"""

import ast
import re
from pathlib import Path


def registered(module: str, name: str) -> tuple[str, ...]:
    """The keys, in order, of the dict literal `name = {...}` (closed by a `}` at the start of a line) at the top
    level of models/<module>.py; only that statement is parsed, so `vaelab --help` stays fast."""
    path = Path(__file__).parent.parent / "models" / module
    text = path.read_text(encoding="utf-8")
    start = re.search(rf"^{name}\b[^=\n]*=\s*{{", text, re.MULTILINE)
    end = text.find("\n}", start.end()) if start else -1
    node = ast.parse(text[start.start():end + 2]).body[0] if end >= 0 else None
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(node.value, ast.Dict):
        raise RuntimeError(f"{path}: no dict literal {name} = {{...}} at the top level")
    keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    if len(keys) != len(node.value.keys):
        raise RuntimeError(f"{path}: every key of {name} must be a string literal (the command line reads them)")
    return tuple(keys)


# multinomial: word counts; categorical: 256 grey levels, for the autoregressive models (pixelcnn, pixel-vae)
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned", "multinomial", "categorical")
# ae, dae, exact, vq, btcvae, factorvae: only for the models that fix them
ESTIMATORS = ("sgvb-a", "sgvb-b", "iwae", "ae", "dae", "exact", "vq", "btcvae", "factorvae")
SCALES = ("exp", "softplus", "relu")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "tf32", "bf16")  # see runtime/precision.py
POSTERIORS = ("gaussian", "laplace", "logistic", "student-t", "gumbel")  # see distributions/families.py
# normal, laplace, dirichlet-laplace (the Laplace approximation of Dirichlet(alpha)), vamp (the VampPrior: a mixture
# of q(z|u_k) at learned pseudo-inputs)
PRIORS = registered("priors.py", "PRIORS")
FLOWS = ("none", "planar", "iaf")  # normalizing flows on top of the Gaussian posterior (models/flows.py)
NOISES = ("masking", "gaussian")  # denoising autoencoder corruption, see distributions/corruption.py
# names the CLI offers before it imports torch (`vaelab --help` stays fast);
# their code is in reports/views.py, baselines/mixtures.py
PLOT_KINDS = ("curves", "recon", "samples", "latent", "manifold", "interp", "topics", "latent-epochs",
              "traversal")
MODELS = registered("registry.py", "MODELS")
# every --data value: the one list `--help`, error messages and data/ read (data/images.py, data/corpus.py)
IMAGE_DATASETS = ("digits", "shapes", "mnist", "fashion-mnist", "photo-patches", "npz:PATH", "folder:PATH",
                  "npy:DIR")
CORPORA = ("bbc_news", "corpus:PATH", "20newsgroups")
DATASETS = IMAGE_DATASETS + CORPORA
BASELINES = {
    "single": "one independent Bernoulli per dimension, one full/diagonal Gaussian, "
              "or one categorical (256 levels) per pixel",
    "mixture": "a mixture by EM: of Bernoulli products, of per-pixel categoricals, or scikit-learn's GaussianMixture",
    "lda": "scikit-learn's latent Dirichlet allocation on a corpus: perplexity and NPMI",
}
COVARIANCES = ("full", "diag")

