"""The ladder's lower rungs for grey pixels scored as 256 levels (likelihood = categorical, the PixelCNN's).

A pixel x in [0, 1] is the level v = round(255 x), as models/pixel_sampling.py reads it, so these
densities and a categorical PixelCNN give log-probabilities of the same discrete events:
    single  : p(x) = prod_d theta_d[v_d], one categorical over 256 levels per pixel
    mixture : p(x) = sum_k pi_k prod_d theta_kd[v_d], fitted by (MAP) EM
Both put a symmetric Dirichlet(1 + a) prior on every theta, worth one pseudo-example per pixel spread
over the 256 levels (a = 1/256), so a level never seen in training keeps a probability above 0. A
heavier prior (one pseudo-count per level) swamps a mixture's small components: EM then hands every
example to one component.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LEVELS = 256
SMOOTHING = 1.0 / LEVELS  # pseudo-count per level: one pseudo-example per pixel
CHUNK = 2048  # rows per E/M-step chunk: (CHUNK, D) levels gathered from (K, D, 256) tables


def levels(x: torch.Tensor) -> torch.Tensor:
    """Grey values in [0, 1], (N, D) -> integer levels (N, D) in 0..255."""
    return (x.double() * (LEVELS - 1)).round().clamp(0, LEVELS - 1).long()


def columns(x: torch.Tensor) -> torch.Tensor:
    """Grey x (N, D) -> for each pixel d, the column d * 256 + v_d of its level in a flattened (D * 256) table."""
    v = levels(x)
    return torch.arange(v.shape[1]) * LEVELS + v  # (N, D)


def level_log_prob(cols: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """sum_d log theta_kd[v_d] for columns (N, D) and tables log_theta (K, D, 256) -> (N, K)."""
    flat = log_theta.reshape(log_theta.shape[0], -1)  # (K, D*256)
    return torch.cat([flat[:, cols[i:i + CHUNK]].sum(-1).T for i in range(0, len(cols), CHUNK)])  # (N, K)


def level_counts(cols: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_n w_nk [v_nd = l] for columns (N, D) and weights (N, K) -> (K, D, 256)."""
    n, d = cols.shape
    counts = torch.zeros(weights.shape[1], d * LEVELS, dtype=weights.dtype)
    for i in range(0, n, CHUNK):
        w = weights[i:i + CHUNK].repeat_interleave(d, 0).T  # (K, n_chunk * D): row n's weight for each of its pixels
        counts.index_add_(1, cols[i:i + CHUNK].reshape(-1), w)
    return counts.reshape(-1, d, LEVELS)


def normalise(counts: torch.Tensor, smoothing: float = SMOOTHING) -> torch.Tensor:
    """MAP tables from level counts (K, D, 256): log (count + a) / (total + 256 a)."""
    c = counts + smoothing
    return c.log() - c.sum(-1, keepdim=True).log()


@dataclass
class CategoricalMixture:
    """Mixture weights (K,) and per-component level tables log theta (K, D, 256), with the EM trace."""

    weights: torch.Tensor
    log_theta: torch.Tensor
    objective: list[float]  # per iteration: mean log-likelihood + log prior / N (what MAP-EM never decreases)
    converged: bool

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per row of grey x (N, D) -> (N,)."""
        return torch.logsumexp(level_log_prob(columns(x), self.log_theta) + self.weights.log(), -1)


def categorical_single(x: torch.Tensor, smoothing: float = SMOOTHING) -> CategoricalMixture:
    """One categorical per pixel: the MAP table of the training levels (a one-component mixture)."""
    cols = columns(x)
    log_theta = normalise(level_counts(cols, torch.ones(len(cols), 1, dtype=torch.float64)), smoothing)
    return CategoricalMixture(torch.ones(1, dtype=torch.float64), log_theta, [], True)


def categorical_mixture_em(x: torch.Tensor, k: int, *, max_iter: int = 100, seed: int = 0,
                           smoothing: float = SMOOTHING, tol: float = 1e-6) -> CategoricalMixture:
    """Fit a mixture of K per-pixel categorical products to grey x (N, D) by (MAP) EM.

    E-step: r_nk = pi_k p(x_n | theta_k) / sum_j pi_j p(x_n | theta_j).
    M-step: pi_k = N_k / N, theta_kd[l] = (sum_n r_nk [v_nd = l] + a) / (N_k + 256 a).
    Starts from responsibilities of K distinct training rows, each row its own component, blurred with
    the whole set (the Bernoulli EM's start: data points shrunk halfway to the mean).
    """
    cols = columns(x)  # once: every E- and M-step reads the same columns
    n = len(cols)
    g = torch.Generator().manual_seed(seed)
    start = torch.randperm(n, generator=g)[:k]
    r = torch.full((n, k), 0.5 / k, dtype=torch.float64)
    r[start, torch.arange(len(start))] += 0.5 * n / k  # each start row weighs as much as half the data
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
    log_theta = normalise(level_counts(cols, r), smoothing)
    trace: list[float] = []
    converged = False
    for _ in range(max_iter):
        joint = level_log_prob(cols, log_theta) + weights.log()  # (N, K)
        log_px = torch.logsumexp(joint, -1)  # (N,)
        prior = smoothing * float(log_theta.sum())
        trace.append(float(log_px.mean()) + prior / n)
        r = torch.exp(joint - log_px[:, None])
        weights = (r.sum(0) / n).clamp_min(1e-12)
        log_theta = normalise(level_counts(cols, r), smoothing)
        if len(trace) > 1 and trace[-1] - trace[-2] < tol * abs(trace[-1]):
            converged = True
            break
    return CategoricalMixture(weights, log_theta, trace, converged)


def fit(x: torch.Tensor, components: int | None, *, max_iter: int = 100, seed: int = 0
        ) -> tuple[CategoricalMixture, dict]:
    """`single` (components None) or `mixture` on grey training rows x (N, D): the model and what to say of it."""
    d = x.shape[1]
    if components is None:
        return categorical_single(x), {"family": "one categorical over 256 levels per pixel",
                                       "params": d * (LEVELS - 1)}
    m = categorical_mixture_em(x, components, max_iter=max_iter, seed=seed)
    return m, {"family": f"mixture of {components} per-pixel categorical products (EM)", "components": components,
               "iterations": len(m.objective), "converged": m.converged,
               "params": components * d * (LEVELS - 1) + components - 1}
