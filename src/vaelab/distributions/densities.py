"""Likelihoods, posteriors and priors, all `torch.distributions` objects. No parameters live here.

Every distribution is wrapped in `Independent` so that `log_prob` sums over the data (or latent)
dimensions and returns one number per example, in nats.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Distribution, Independent, Multinomial, Normal, constraints

# Three common ways to make sigma positive (exp(logvar / 2) as in Kingma & Welling 2014; relu + 0.05,
# a floor some tutorials use; softplus + eps is the common smooth alternative).
SCALE_FNS = {
    "exp": lambda h: torch.exp(0.5 * h),
    "softplus": lambda h: F.softplus(h) + 1e-8,
    "relu": lambda h: F.relu(h) + 0.05,
}

# Argument checks would run on every call in the training loop (and force a host sync on a GPU).
# The trainer checks the loss for NaN/inf once per epoch instead, with a clear message.
_CHECK = dict(validate_args=False)

# A learned Gaussian variance can collapse onto pixels that never change (log p -> +inf);
# the floor keeps the density finite. exp(-9) ~ 1.2e-4 in variance.
MIN_LOGVAR = -9.0


def gaussian_posterior(raw: torch.Tensor, scale: str = "exp") -> Distribution:
    """Diagonal Gaussian q(z|x) from raw (..., 2*Dz) encoder output: [mean, scale pre-activation]."""
    mean, h = raw.chunk(2, dim=-1)
    return diagonal_normal(mean, SCALE_FNS[scale](h))


def diagonal_normal(loc: torch.Tensor, scale: torch.Tensor) -> Distribution:
    """N(loc, diag(scale^2)) with the last dimension as the event."""
    return Independent(Normal(loc, scale, **_CHECK), 1, **_CHECK)


class BagOfWords(Distribution):
    """Word counts n (..., |V|) of a document whose tokens are drawn independently from softmax(logits).

    log_prob(n) = sum_i n_i log p_i, the log-probability of the document's tokens in the order
    they were written. This is the number perplexity is defined on (NVDM, LDA), so it is the
    default. With coefficient=True it is torch's Multinomial pmf of the counts themselves, which
    adds log N! - sum_i log n_i! (>= 0) for the orderings that give the same counts.
    N is read from each document; total_count only sets the length of sampled documents.
    (torch's Multinomial is not used for log_prob: its constructor builds and checks a Binomial
    and a Categorical over the whole (K, B, |V|) tensor, several times the cost of the density.)
    """

    arg_constraints = {"logits": constraints.real_vector}
    has_rsample = False

    def __init__(self, logits: torch.Tensor, total_count: int = 1, coefficient: bool = False):
        self.raw, self.total_count, self.coefficient = logits, total_count, coefficient
        super().__init__(logits.shape[:-1], logits.shape[-1:], **_CHECK)

    @property
    def logits(self) -> torch.Tensor:
        """Normalised log-probabilities of the words, (..., |V|)."""
        return self.raw.log_softmax(-1)

    @property
    def probs(self) -> torch.Tensor:
        return self.raw.softmax(-1)

    @property
    def mean(self) -> torch.Tensor:
        return self.probs * self.total_count

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return Multinomial(self.total_count, logits=self.raw, **_CHECK).sample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        # sum_i n_i (l_i - logsumexp(l)) without materialising log_softmax: (..., |V|) -> (...)
        n = value.sum(-1)
        lp = (value * self.raw).sum(-1) - n * self.raw.logsumexp(-1)
        if self.coefficient:
            lp = lp + torch.lgamma(n + 1) - torch.lgamma(value + 1).sum(-1)
        return lp


class BernoulliLogits(Bernoulli):
    """Bernoulli on logits whose log_prob is x*l - softplus(l): the same value as torch's, in fewer
    passes over memory than its binary_cross_entropy_with_logits, which matters when evaluation
    scores millions of (sample, pixel) pairs."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(F.softplus(self.logits).neg_(), value, self.logits)


def _gaussian_learned(out: torch.Tensor, logvar: torch.Tensor | None) -> Distribution:
    if logvar is None:
        raise ValueError("gaussian-learned needs a log-variance")
    std = torch.exp(0.5 * logvar.clamp(min=MIN_LOGVAR)).expand_as(out)
    return Independent(Normal(out, std, **_CHECK), 1, **_CHECK)


# p(x|z) from raw decoder output (..., D) and, for gaussian-learned, the log-variance; name -> constructor. With
# models/pixel/sampling.py's KINDS (categorical), the config's and the CLI's list of likelihoods (config/choices.py
# reads the keys): a new likelihood is one entry here.
#   bernoulli        : out are logits.
#   gaussian         : N(x; out, I), the seed's fixed unit variance.
#   gaussian-learned : N(x; out, diag(exp(logvar))) with one learned log-variance per dimension.
#   multinomial      : word counts, tokens drawn from softmax(out) (Miao et al. 2016, NVDM); see BagOfWords.
LIKELIHOODS: dict[str, Callable[[torch.Tensor, torch.Tensor | None], Distribution]] = {
    "bernoulli": lambda out, logvar: Independent(BernoulliLogits(logits=out, **_CHECK), 1, **_CHECK),
    "gaussian": lambda out, logvar: Independent(Normal(out, torch.ones_like(out), **_CHECK), 1, **_CHECK),
    "gaussian-learned": _gaussian_learned,
    "multinomial": lambda out, logvar: BagOfWords(out),
}


def likelihood(kind: str, out: torch.Tensor, logvar: torch.Tensor | None = None) -> Distribution:
    """p(x|z) of the family `kind` (a key of LIKELIHOODS) from raw decoder output (..., D)."""
    if kind not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {kind!r}")
    return LIKELIHOODS[kind](out, logvar)


def mean_image(p: Distribution) -> torch.Tensor:
    """The mean of p(x|z), clipped to [0, 1] for display."""
    return p.mean.clamp(0.0, 1.0)
