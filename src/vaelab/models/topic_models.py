"""Topic models on the VAE: ProdLDA (Srivastava & Sutton 2017) and the embedded topic model (Dieng et al. 2020).

Both draw z ~ q(z|d), a diagonal Gaussian, and read theta = softmax(z) (a logistic normal) as the
document's topic proportions; only their decoders differ:
    ProdLDA  p(w | theta) = softmax(BN(beta theta) + b)          a product of experts
    ETM      p(w | theta) = sum_k theta_k softmax(rho alpha_k)_w  a mixture, topics in embedding space
The prior is the model's prior module (ProdLDA: models/dirichlet.py, the Laplace approximation of
Dirichlet(alpha); the ETM: N(0, I) as in the paper), so the generic estimators score them. Batch norm
and dropout act in training only: evaluation runs in eval mode (running statistics, no dropout), where
the decoder is a fixed function of z and the bounds are per document.
"""

from __future__ import annotations

import numpy as np
import torch

from ..topics.scores import unigram_log_probs
from .vae import VAE


class TopicModel(VAE):
    """A VAE whose decoder reads theta = softmax(z); topics are the columns of topic_weights."""

    signed_topics = False  # a topic is the top of its column (an NVDM reads both ends)

    @property
    def topic_weights(self) -> torch.Tensor:
        """log p(w | theta = e_k), (|V|, K): each topic's word distribution, the decoder at a vertex of the simplex.

        For the ETM this is log beta_k; for ProdLDA, log softmax(BN(beta_k) + b) with the running
        statistics (eval mode), the model's own p(w | topic k) as LDA's topic is. (Reading raw beta
        instead favours rare words: on BBC News NPMI -0.20 against 0.25; docs/RESULTS.md.)
        """
        net, was = self.decoder[1], self.decoder[1].training
        net.eval()
        try:
            eye = torch.eye(self.latent_dim, device=next(net.parameters()).device)
            return net(eye).log_softmax(-1).T  # (|V|, K)
        finally:
            net.train(was)

    @torch.no_grad()
    def mixture(self, x: torch.Tensor) -> torch.Tensor:
        """Topic proportions softmax(E_q[z]) of each document, (B, K), the usual point estimate of theta."""
        return self.encode(x).mean.softmax(-1)


class ProdLDA(TopicModel):
    """ProdLDA: encoder networks.TopicEncoder, decoder networks.Proportions then networks.ProductOfExperts."""


class ETM(TopicModel):
    """The embedded topic model: decoder networks.Proportions then networks.EmbeddedTopics."""


@torch.no_grad()
def unigram_shift(model: ProdLDA, data) -> None:
    """The decoder's word offsets start at the log unigram frequencies, as NVDM's b (models/nvdm.py)."""
    dec = model.decoder[1]
    target = dec.norm.shift if dec.norm is not None else dec.bias
    target.copy_(unigram_log_probs(data.train).to(target))


def read_embeddings(path: str, vocabulary: tuple[str, ...], dim: int) -> tuple[torch.Tensor, int]:
    """Rows of a text embedding file (`word v1 ... vL` per line; a word2vec `N L` header is skipped) for the vocabulary.

    Returns (|V|, L) float32 (words the file lacks: small random rows) and how many were missing.
    A line of another width, a value that is not a finite number, or no vocabulary word found is a DataError.
    """
    import io

    from ..data.regular_files import open_regular
    from ..errors import DataError

    index = {w: i for i, w in enumerate(vocabulary)}
    rows = np.random.default_rng(0).normal(0.0, 1.0 / np.sqrt(dim), (len(vocabulary), dim)).astype(np.float32)
    found = np.zeros(len(vocabulary), dtype=bool)
    try:
        with io.TextIOWrapper(open_regular(path, f"embeddings {path}"), encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                parts = line.split()
                if not parts or (i == 1 and len(parts) == 2 and all(p.isdigit() for p in parts)):
                    continue
                if len(parts) != dim + 1:
                    raise DataError(f"embeddings {path}: line {i} has {len(parts) - 1} values, "
                                    f"not embedding_dim = {dim}")
                j = index.get(parts[0])
                if j is None:
                    continue
                try:
                    v = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise DataError(f"embeddings {path}: line {i} holds a value that is not a number") from None
                if not np.isfinite(v).all():
                    raise DataError(f"embeddings {path}: line {i} holds a value that is not finite")
                rows[j], found[j] = v, True
    except UnicodeDecodeError:
        raise DataError(f"embeddings {path}: not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"embeddings {path}: cannot read ({e.strerror or e})") from None
    if not found.any():
        raise DataError(f"embeddings {path}: no word of the corpus vocabulary is in the file")
    return torch.from_numpy(rows), int((~found).sum())


@torch.no_grad()
def load_embeddings(model: ETM, data) -> None:
    """The ETM's init: rho from the config's embedding file (model.embedding_file), when it names one."""
    if model.embedding_file:
        rho, missing = read_embeddings(model.embedding_file, data.vocabulary, model.decoder[1].rho.shape[1])
        if missing:
            import warnings
            warnings.warn(f"{missing} of {len(data.vocabulary)} vocabulary words are not in {model.embedding_file}; "
                          "they keep fixed random embeddings", stacklevel=2)
        model.decoder[1].rho.copy_(rho)
