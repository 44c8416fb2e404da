"""Every number vaelab logs or reports, once: its name, label, what it estimates, format, and direction.

metrics.jsonl (one row per epoch) and eval.json use these names; the CLI, the report and compare
read labels and descriptions from here. `{k}` in a label or description is the run's sample count.
Values are per example, in nats, summed over data dimensions, unless the description says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str  # the key in metrics.jsonl / eval.json
    label: str  # short, for tables and the CLI
    description: str  # what it is, naming its estimator
    fmt: str = ".4f"
    better: str | None = None  # "higher", "lower", or None (not a score)
    estimator: str | None = None  # the bound it estimates: ELBO, IWAE-k, NLL-k, reconstruction, ...


def _m(*args: Any, **kw: Any) -> tuple[str, Metric]:
    m = Metric(*args, **kw)
    return m.name, m


# Per-epoch (metrics.jsonl), then evaluation (eval.json), in display order.
METRICS: dict[str, Metric] = dict([
    _m("epoch", "epoch", "epochs finished", "d"),
    _m("train_loss", "train loss", "minus the training bound (ELBO, IWAE-k, reconstruction score, or the exact "
       "log p(x) of an autoregressive model) averaged "
       "over the epoch's batches, as the weights moved: nats per example", ".3f", "lower", "training bound"),
    _m("train_objective", "train objective", "the loss differentiated during the epoch when it is not minus the "
       "bound (KL warm-up's beta < 1): a surrogate, not a bound", ".3f", None, "surrogate"),
    _m("train_seconds", "train s", "seconds of training in the epoch (validation excluded)", ".2f"),
    _m("val_elbo", "val ELBO", "validation ELBO (SGVB-B, fixed noise)", ".3f", "higher", "ELBO"),
    _m("val_iwae", "val IWAE-{k}", "validation IWAE-{k} bound with the training k (fixed noise)", ".3f", "higher",
       "IWAE-k"),
    _m("val_recon", "val recon", "validation log p(x | z=f(x)): a reconstruction score, not a bound", ".3f",
       "higher", "reconstruction"),
    _m("val_logp", "val log p(x)", "validation log p(x), exact (an autoregressive model: sum_i log p(x_i | x_<i))",
       ".3f", "higher", "exact"),
    _m("split", "split", "data split", "s"),
    _m("model", "model", "model", "s"),
    _m("data", "data", "dataset", "s"),
    _m("likelihood", "likelihood", "likelihood p(x|z)", "s"),
    _m("n", "n", "examples evaluated", "d"),
    _m("precision", "precision", "the networks' matrix products in evaluation: fp32 (the default; the bounds are "
       "summed in float64), or bf16 / tf32 when asked, kept apart from fp32 evaluations", "s"),
    _m("split_points", "of", "examples in the split, when only its first n were evaluated (evaluate --points)", "d"),
    _m("k", "k", "importance samples per example", "d"),
    _m("elbo", "ELBO", "ELBO: evidence lower bound on log p(x)", ".4f", "higher", "ELBO"),
    _m("iwae", "IWAE-{k}", "IWAE-{k}: importance-weighted lower bound on log p(x) with k={k} samples", ".4f",
       "higher", "IWAE-k"),
    _m("nll", "NLL-{k}", "NLL-{k} = −IWAE-{k}: estimated negative log-likelihood (an upper bound in expectation)",
       ".4f", "lower", "NLL-k"),
    _m("bits_per_dim", "bits_per_dim", "NLL-{k} in bits per data dimension; for a density on dequantized "
       "L-level data (NLL-{k} + D log L) / (D log 2), the discrete data's bound", ".4f", "lower", "NLL-k"),
    _m("logp", "log p(x)", "log p(x) = Σ_i log p(x_i | x_<i), exact (an autoregressive model; no k)", ".4f",
       "higher", "exact"),
    _m("recon", "recon", "E_q log p(x|z): expected reconstruction log-likelihood", ".4f", "higher", "reconstruction"),
    _m("kl", "kl", "KL(q(z|x) ‖ p(z))", ".4f", None, "KL"),
    _m("active_units", "active_units", "latent dimensions whose posterior mean varies across data: "
       "Cov_x(E_q[z_u]) > 0.01 (every stochastic layer's, for a hierarchical VAE)", "d"),
    _m("kl_layers", "KL per layer", "KL of each stochastic layer given its parents (z1 bottom), Monte Carlo: "
       "they sum to kl", ".4f", None, "KL"),
    _m("active_units_layers", "active units per layer", "active units of each stochastic layer (z1 bottom)", "d"),
    _m("words", "words", "tokens in the split's documents", "d"),
    _m("perplexity", "perplexity", "exp(−Σ ELBO / Σ N_d): corpus perplexity from the ELBO (an upper bound)",
       ".4f", "lower", "ELBO"),
    _m("perplexity_doc", "perplexity_doc", "exp(mean_d(−ELBO_d / N_d)): the NVDM paper's per-document perplexity",
       ".4f", "lower", "ELBO"),
    _m("perplexity_is", "perplexity_is", "exp(−Σ IWAE-{k} / Σ N_d): perplexity from the importance-sampled log p(d)",
       ".4f", "lower", "IWAE-k"),
    _m("unigram_perplexity", "unigram_perplexity", "perplexity of the add-one smoothed unigram model fitted on train",
       ".4f", "lower"),
    _m("npmi", "npmi", "mean NPMI coherence of the top-10 words of each topic (by default reference: the "
       "training split, window: the whole document; see npmi_window and npmi_reference)", ".4f", "higher"),
    _m("npmi_window", "NPMI window", "the NPMI window asked of this evaluation, where it is not the run's "
       "(0: whole documents; N: N tokens)", "d"),
    _m("npmi_reference", "NPMI reference", "the NPMI reference corpus asked of this evaluation, where it is not "
       "the run's (empty: the training split)", "s"),
    _m("diversity", "diversity", "topic diversity: unique words / all words in the top-25 lists of every topic",
       ".4f", "higher"),
    _m("purity", "purity", "mean label purity: the majority label's share of the min(30, N / topics) documents "
       "loading most on each topic", ".4f", "higher"),
    _m("recon_sq_error", "recon sq. error", "sum over pixels of (x - E[x | z_q(x)])^2 per example (VQ-VAE)", ".3f",
       "lower"),
    _m("codebook_used", "codes used", "VQ-VAE codes chosen at least once on the split", "d", "higher"),
    _m("dead_codes", "dead codes", "VQ-VAE codes never chosen on the split", "d", "lower"),
    _m("codebook_usage", "codebook usage", "fraction of the VQ-VAE's codebook chosen at least once on the split",
       ".3f", "higher"),
    _m("codebook_perplexity", "code perplexity", "exp(entropy of the code frequencies on the split): the VQ-VAE's "
       "effective codebook size", ".1f", "higher"),
    _m("vq_recon", "VQ log p(x|z_q)", "log p(x | z_q) at the VQ-VAE's deterministic codes: the VQ bound's first term",
       ".4f", "higher", "reconstruction"),
    _m("vq_prior", "log p(z_q)", "log p(z_q) under the PixelCNN code prior: the VQ bound's second term", ".4f",
       "higher", "prior"),
    _m("seconds", "seconds", "evaluation wall time", ".4f"),
    _m("stale", "stale", "true: the run was trained on after this evaluation, whose weights are gone", "s"),
])
EPOCH_KEYS = ("epoch", "train_loss", "train_objective", "train_seconds", "val_elbo", "val_iwae", "val_recon",
              "val_logp")
VALIDATION_KEYS = ("val_elbo", "val_iwae", "val_recon", "val_logp")


def _k(text: str, k: Any) -> str:
    return text.replace("{k}", str(k) if k is not None else "k")


def label(name: str, k: Any = None) -> str:
    """Short name, e.g. 'IWAE-5'; the key itself for unknown names."""
    return _k(METRICS[name].label, k) if name in METRICS else name


def describe(name: str, k: Any = None) -> str:
    """What the number is and which estimator it comes from; '' for unknown names."""
    return _k(METRICS[name].description, k) if name in METRICS else ""


def order(names: Any) -> list[str]:
    """Names in registry order, unknown ones after, in their own order."""
    names = list(names)
    return [n for n in METRICS if n in names] + [n for n in names if n not in METRICS]


def best(rows: list[dict], name: str) -> tuple[float, int] | None:
    """The best value of a per-epoch metric and its epoch, by the metric's direction; None if never logged."""
    vals = [(r[name], r.get("epoch")) for r in rows if isinstance(r.get(name), (int, float))]
    if not vals:
        return None
    pick = min if METRICS[name].better == "lower" else max
    return pick(vals, key=lambda t: t[0])
