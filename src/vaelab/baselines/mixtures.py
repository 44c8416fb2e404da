"""The ladder's lower rungs (a single distribution, then a mixture, then the VAE: the usual likelihood ladder):
one distribution, then a mixture fitted by EM.

A baseline fits on the training split and scores the very inputs `vaelab evaluate` scores
(inputs.eval_inputs): the same seeded binarization for Bernoulli data, the same seeded
dequantization for Gaussian data. Its `nll` is the exact -log p(x) under the fitted model, in nats
per example summed over data dimensions, so it sits in the same column as a VAE's NLL-k.

The family follows the likelihood:
    bernoulli : single = one independent Bernoulli per dimension
                mixture = a mixture of K such products, fitted by EM (bernoulli_mixture_em)
    gaussian* : single = one Gaussian, full or diagonal covariance (maximum likelihood)
                mixture = scikit-learn's GaussianMixture, fitted by EM
    categorical (256 grey levels, the PixelCNN's): single = one categorical per pixel,
                mixture = a mixture of K such products by EM (baselines/categorical.py)

Adding a baseline is one function `fit(config, data, options) -> dict` and one line in BASELINES.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch.distributions import MultivariateNormal, Normal

from ..config.choices import COVARIANCES
from ..config.schema import Config
from ..data import ImageData, is_corpus, levels
from ..errors import AlreadyThere, VaelabError
from ..estimators.evaluation import bits_per_dim
from ..logs import info
from ..runs import inputs
from ..runs.json_text import write_json
from ..runs.resolve import resolve
from ..topics import lda
from . import categorical as cat

REG_COVAR = 1e-6  # added to covariance diagonals; scikit-learn's default, so a 1-component GMM equals `single`
SMOOTHING = 1.0  # Beta(1 + a, 1 + a) prior on Bernoulli means (a = SMOOTHING): no probability is exactly 0 or 1
TOL = 1e-6  # EM stops when the mean log-likelihood per example improves by less than this (relative)


@dataclass(frozen=True)
class Options:
    """What a baseline may be asked for; each baseline reads the fields it needs."""

    components: int = 10
    covariance: str = "full"
    max_iter: int = 100
    seed: int = 0


@dataclass(frozen=True)
class Baseline:
    """fit(config, data, options) returns a dict with `nll` (test) and `params`, plus anything it wants to say."""

    fit: Callable[[Config, ImageData, Options], dict[str, Any]]
    doc: str
    likelihood: str | None = None  # the likelihood family it always models (lda: word counts)


def _is_bernoulli(c: Config) -> bool:
    return c.likelihood == "bernoulli"


def _splits(c: Config, data: ImageData) -> dict[str, torch.Tensor]:
    """The inputs a VAE trained with config c is scored on, for every non-empty split, on the CPU."""
    dev = torch.device("cpu")
    return {s: inputs.eval_inputs(c, data, s, dev) for s in inputs.SPLITS if len(inputs.split_tensor(data, s)[0])}


def _scores(log_p: Callable[[torch.Tensor], torch.Tensor], xs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean -log p(x) per split: {'nll': test, 'train_nll': ..., 'val_nll': ...}."""
    return {("nll" if s == "test" else f"{s}_nll"): -float(log_p(x).double().mean()) for s, x in xs.items()}


# --- Bernoulli families ---------------------------------------------------------------------------


def bernoulli_log_prob(x: torch.Tensor, log_mu: torch.Tensor, log1m_mu: torch.Tensor) -> torch.Tensor:
    """log prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d) for x (N, D) and K components (K, D) -> (N, K)."""
    return x @ (log_mu - log1m_mu).T + log1m_mu.sum(-1)


@dataclass
class BernoulliMixture:
    """Mixture weights (K,) and per-component means (K, D), with the EM trace."""

    weights: torch.Tensor
    means: torch.Tensor
    objective: list[float]  # per iteration: mean log-likelihood + log prior / N (what MAP-EM never decreases)
    converged: bool

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per row of x (N, D) -> (N,)."""
        x = x.to(self.means.dtype)
        joint = bernoulli_log_prob(x, self.means.log(), torch.log1p(-self.means)) + self.weights.log()
        return torch.logsumexp(joint, -1)


def bernoulli_mixture_em(x: torch.Tensor, k: int, *, max_iter: int = 100, seed: int = 0,
                         smoothing: float = SMOOTHING, tol: float = TOL) -> BernoulliMixture:
    """Fit a mixture of K independent-Bernoulli products to binary x (N, D) by (MAP) EM.

    E-step: responsibilities r_nk = pi_k p(x_n | mu_k) / sum_j pi_j p(x_n | mu_j).
    M-step: pi_k = N_k / N, mu_k = (sum_n r_nk x_n + a) / (N_k + 2a) with N_k = sum_n r_nk, where a is
    a Beta(1+a, 1+a) prior's pseudo-count. Starts from K distinct data points shrunk halfway to the mean.
    """
    x = x.float()
    n, d = x.shape
    g = torch.Generator().manual_seed(seed)
    start = x[torch.randperm(n, generator=g)[:k]]  # (K, D)
    means = (0.5 * start + 0.5 * x.mean(0)).clamp(1e-3, 1 - 1e-3)
    weights = torch.full((k,), 1.0 / k)
    trace: list[float] = []
    converged = False
    for _ in range(max_iter):
        log_mu, log1m_mu = means.log(), torch.log1p(-means)
        joint = bernoulli_log_prob(x, log_mu, log1m_mu) + weights.log()  # (N, K)
        log_px = torch.logsumexp(joint, -1)  # (N,)
        prior = smoothing * float((log_mu + log1m_mu).double().sum())
        trace.append(float(log_px.double().mean()) + prior / n)
        r = torch.exp(joint - log_px[:, None])  # (N, K) responsibilities
        nk = r.sum(0)  # (K,)
        weights = (nk / n).clamp_min(1e-12)
        means = ((r.T @ x + smoothing) / (nk[:, None] + 2 * smoothing)).clamp(1e-7, 1 - 1e-7)
        if len(trace) > 1 and trace[-1] - trace[-2] < tol * abs(trace[-1]):
            converged = True
            break
    return BernoulliMixture(weights, means, trace, converged)


def _bernoulli_single(xs: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    # the maximum a-posteriori mean per dimension, with the same Beta prior as the mixture
    x = xs["train"].double()
    mu = ((x.sum(0) + SMOOTHING) / (len(x) + 2 * SMOOTHING)).clamp(1e-7, 1 - 1e-7)
    log_mu, log1m = mu.log()[None], torch.log1p(-mu)[None]
    scores = _scores(lambda v: bernoulli_log_prob(v.double(), log_mu, log1m)[:, 0], xs)
    return scores, {"family": "independent Bernoulli per dimension", "params": int(x.shape[1])}


def _bernoulli_mixture(xs: dict[str, torch.Tensor], o: Options) -> tuple[dict, dict]:
    m = bernoulli_mixture_em(xs["train"], o.components, max_iter=o.max_iter, seed=o.seed)
    d = xs["train"].shape[1]
    info = {"family": f"mixture of {o.components} independent-Bernoulli products (EM)",
            "components": o.components, "iterations": len(m.objective), "converged": m.converged,
            "params": o.components * d + o.components - 1}
    return _scores(m.log_prob, xs), info


# --- Gaussian families ----------------------------------------------------------------------------


def _gaussian_single(xs: dict[str, torch.Tensor], o: Options) -> tuple[dict, dict]:
    x = xs["train"].double()
    mean = x.mean(0)
    d = x.shape[1]
    if o.covariance == "full":
        centred = x - mean
        cov = centred.T @ centred / len(x) + REG_COVAR * torch.eye(d, dtype=x.dtype)
        dist = MultivariateNormal(mean, covariance_matrix=cov)
        params = d + d * (d + 1) // 2
    else:
        dist = Normal(mean, (x.var(0, unbiased=False) + REG_COVAR).sqrt())
        params = 2 * d

    def log_p(v: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(v.double())
        return lp if o.covariance == "full" else lp.sum(-1)

    return _scores(log_p, xs), {"family": f"one Gaussian, {o.covariance} covariance", "params": params}


def _gaussian_mixture(xs: dict[str, torch.Tensor], o: Options) -> tuple[dict, dict]:
    from sklearn.mixture import GaussianMixture  # lazy: only this baseline needs it

    gmm = GaussianMixture(n_components=o.components, covariance_type=o.covariance, reg_covar=REG_COVAR,
                          max_iter=o.max_iter, random_state=o.seed)
    gmm.fit(xs["train"].double().numpy())
    d = xs["train"].shape[1]
    per = d * (d + 1) // 2 if o.covariance == "full" else d
    info = {"family": f"scikit-learn GaussianMixture, {o.components} components, {o.covariance} covariance (EM)",
            "components": o.components, "iterations": int(gmm.n_iter_), "converged": bool(gmm.converged_),
            "params": o.components * (d + per) + o.components - 1}
    return _scores(lambda v: torch.from_numpy(gmm.score_samples(v.double().numpy())), xs), info


# --- the registry -----------------------------------------------------------------------------------


def _check_family(c: Config, data: ImageData) -> None:
    """Refuse data on which these densities would give a meaningless number."""
    if c.likelihood == "categorical":
        return  # 256 levels of any grey or binary data: a discrete density, always bounded
    if not _is_bernoulli(c) and data.scale != 1.0 and not c.dequantize:
        raise VaelabError("a Gaussian density on quantised pixels is unbounded; pass dequantize = true (and train the "
                          "VAE with dequantize = true) so both score the same dequantized test points")
    if _is_bernoulli(c) and not c.binarize:
        raise VaelabError("Bernoulli baselines need binary data; binarize=false would score grey values")


def _single(c: Config, data: ImageData, o: Options) -> dict[str, Any]:
    _check_family(c, data)
    xs = _splits(c, data)
    if c.likelihood == "categorical":
        m, info = cat.fit(xs["train"], None)
        return _scores(m.log_prob, xs) | info
    scores, info = _bernoulli_single(xs) if _is_bernoulli(c) else _gaussian_single(xs, o)
    return scores | info


def _mixture(c: Config, data: ImageData, o: Options) -> dict[str, Any]:
    if o.components > len(data.train):
        raise VaelabError(f"components = {o.components} is more than the {len(data.train)} training examples")
    _check_family(c, data)
    xs = _splits(c, data)
    if c.likelihood == "categorical":
        m, info = cat.fit(xs["train"], o.components, max_iter=o.max_iter, seed=o.seed)
        return _scores(m.log_prob, xs) | info
    scores, info = _bernoulli_mixture(xs, o) if _is_bernoulli(c) else _gaussian_mixture(xs, o)
    return scores | info


# the baselines by name, each with the line `vaelab baseline --help` shows (config/choices.py reads the names and
# lines from this source, so that --help needs no torch): a new baseline is its fit function and one entry here
BASELINES: dict[str, Baseline] = {
    "single": Baseline(_single, "one independent Bernoulli per dimension, one full/diagonal Gaussian, "
                                "or one categorical (256 levels) per pixel"),
    "mixture": Baseline(_mixture, "a mixture by EM: of Bernoulli products, of per-pixel categoricals, "
                                  "or scikit-learn's GaussianMixture"),
    "lda": Baseline(lda.fit, "scikit-learn's latent Dirichlet allocation on a corpus: perplexity and NPMI",
                    likelihood="multinomial"),
}


def test_inputs(c: Config, data: ImageData) -> str:
    """How the scored test inputs were made, so tables can tell whether two numbers share test points."""
    if is_corpus(data):
        how = "word counts"
    elif c.binarize:  # c is resolved (fit): binarize and dequantize say what was done
        how = f"seeded binarization (seed {inputs.EVAL_BINARIZE_SEED + inputs.SPLITS.index('test')})"
    elif c.dequantize:
        how = f"seeded uniform dequantization (seed {inputs.EVAL_BINARIZE_SEED + inputs.SPLITS.index('test')})"
    else:
        how = "values as stored, scaled to [0, 1]"
    return f"{c.data} test split, {len(data.test)} examples, {how}"


def check(name: str, c: Config, data: ImageData, o: Options) -> None:
    """Refuse what would give a meaningless number, before anything is fitted or written."""
    if name not in BASELINES:
        raise VaelabError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
    if o.components < 1 or o.max_iter < 1:
        raise VaelabError("components and max_iter must be at least 1")
    if o.covariance not in COVARIANCES:
        raise VaelabError(f"covariance must be one of {', '.join(COVARIANCES)}, not {o.covariance!r}")


def fit(name: str, c: Config, options: Options, out: str | Path, *, overwrite: bool = False,
        log: Callable[[str], None] = info) -> dict[str, Any]:
    """Fit baseline `name` on the data config c describes; write OUT/baseline.json and return its contents."""
    target = Path(out) / "baseline.json"
    if target.exists() and not overwrite:
        raise AlreadyThere(f"{out} already holds a baseline; overwrite=True replaces it", out, "baseline")
    if Path(out).exists() and not Path(out).is_dir():
        raise VaelabError(f"{out} is a file, not a folder")
    if name in BASELINES and BASELINES[name].likelihood:
        c = c.replace(likelihood=BASELINES[name].likelihood)
    if c.likelihood == "categorical":  # resolved as a PixelCNN's data would be: the model is not used
        c = c.replace(model="pixelcnn")
    data = inputs.load_data(c)
    c = resolve(c, data.scale, torch.device("cpu")).config  # the treatment of the data, as a VAE's run saves it
    check(name, c, data, options)
    start = time.perf_counter()
    result = BASELINES[name].fit(c, data, options)
    seconds = time.perf_counter() - start
    out_dict = {"baseline": name, "data": c.data, "likelihood": c.likelihood, "test_inputs": test_inputs(c, data),
                "n": len(data.test), **result, "seconds": seconds}
    if "nll" in result:
        out_dict["estimators"] = {"nll": "exact -log p(x) under the fitted model, nats per example (test split)"}
        if not is_corpus(data):  # per vocabulary entry means nothing; a corpus baseline reports perplexity
            # as the VAE's (evaluation.bits_per_dim): a density on dequantized pixels bounds the L-level data's bits
            step = levels(data.scale) if c.dequantize else 0
            out_dict["bits_per_dim"] = bits_per_dim(result["nll"], data.dim, step)
            out_dict["estimators"]["bits_per_dim"] = (f"(nll + D log {step}) / (D log 2), bits per dimension of the "
                                                      f"{step}-level data" if step else "nll / (D log 2)")
        out_dict["estimators"] |= result.get("estimators", {})
    kept = ("data", "data_dir", "likelihood", "binarize", "dequantize", "val_fraction", "seed", "image_size",
            "vocab_size", "stop_words", "min_df", "max_df")
    kept += ("npmi_window", "npmi_reference") if is_corpus(data) else ()  # a document baseline's NPMI convention
    out_dict["config"] = {k: v for k, v in c.to_dict().items() if k in kept}
    out_dict["options"] = {"components": options.components, "covariance": options.covariance,
                           "max_iter": options.max_iter, "seed": options.seed}
    Path(out).mkdir(parents=True, exist_ok=True)
    write_json(target, out_dict)
    return out_dict


def load(path: str | Path) -> dict[str, Any]:
    """A baseline.json (give the folder or the file)."""
    p = Path(path)
    p = p / "baseline.json" if p.is_dir() else p
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        raise VaelabError(f"{path}: no readable baseline.json") from None
    if not isinstance(data, dict) or "baseline" not in data:
        raise VaelabError(f"{p}: not a vaelab baseline.json")
    return data
