"""The report's first lines: the run's answer in words and numbers, before any picture or table.

    what      the model in words ("VAE, 20-D latent (Gaussian q, normal prior), Bernoulli likelihood, 64-dim data")
    score     the test NLL-k (or exact NLL), ELBO and perplexity, each naming its estimator
    baseline  the best baseline of the last `vaelab compare --update-reports` scored on the same test points,
              and by how many nats per example the run beats (or trails) it
    time      the summed training seconds of the epochs in metrics.jsonl
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from ..config import schema as cfg
from ..errors import VaelabError
from ..runs.checkpoint import read_shape
from ..runs.folder import RunFolder
from .html import fmt

MODEL_WORDS = {"vae": "VAE", "conv-vae": "convolutional VAE", "ae": "autoencoder", "iwae": "IWAE",
               "dae": "denoising autoencoder", "hvae": "hierarchical VAE",
               "conv-hvae": "convolutional hierarchical VAE",
               "nvdm": "NVDM", "prodlda": "ProdLDA", "etm": "embedded topic model (ETM)", "pixelcnn": "PixelCNN",
               "pixel-vae": "PixelVAE"}
LIKELIHOOD_WORDS = {"bernoulli": "Bernoulli", "gaussian": "Gaussian", "gaussian-learned": "Gaussian (learned variance)",
                    "multinomial": "multinomial", "categorical": "256-level categorical"}
NO_LATENT = ("pixelcnn",)
CODES = ("ae", "dae")  # a deterministic code, no posterior or prior


def _data_words(folder: RunFolder, c: cfg.Config) -> str:
    """'64-dim data (1×8×8 images, digits)' from the shape recorded beside the weights (the data's name without)."""
    try:
        shape = read_shape(folder.weights)
    except (VaelabError, OSError, ValueError):
        return f"data {c.data}"
    dims = math.prod(shape)
    if c.likelihood == "multinomial":
        return f"{dims}-word vocabulary ({c.data})"
    kind = f"{'×'.join(map(str, shape))} images, " if len(shape) == 3 else ""
    return f"{dims}-dim data ({kind}{c.data})"


def model_words(folder: RunFolder) -> str:
    """The model in words, from config.toml and the weights' header (no tensor is read)."""
    try:
        c = folder.read_config()
    except (VaelabError, OSError, ValueError):
        return ""
    parts = [MODEL_WORDS.get(c.model, c.model)]
    if c.model not in NO_LATENT:
        z = "+".join(map(str, cfg.latent_sizes(c)))
        if c.model in CODES:
            parts.append(f"{z}-D code")
        else:
            prior = {"normal": "N(0, I)", "vamp": "VampPrior"}.get(c.prior, c.prior)
            flow = f", {c.flow} flow ×{c.flow_steps}" if c.flow != "none" else ""
            parts.append(f"{z}-D latent ({c.posterior.capitalize()} q{flow}, {prior} prior)")
    parts.append(f"{LIKELIHOOD_WORDS.get(c.likelihood, c.likelihood)} likelihood")
    parts.append(_data_words(folder, c))
    return ", ".join(parts)


def _number(value: Any) -> str:
    return fmt(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def best_baseline(comparison: Any, this_path: str | None) -> tuple[dict, dict] | None:
    """(this run's row, the baseline row with the lowest test NLL on the same test points) from comparison.json."""
    if not isinstance(comparison, dict) or not isinstance(comparison.get("rows"), list):
        return None
    rows = [r for r in comparison["rows"] if isinstance(r, dict)]
    this = next((r for r in rows if r.get("path") == (this_path or comparison.get("this"))), None)
    if this is None or not isinstance(this.get("nll"), (int, float)):
        return None
    bases = [r for r in rows if r.get("kind") == "baseline" and isinstance(r.get("nll"), (int, float))
             and r.get("test_points") == this.get("test_points")]
    return (this, min(bases, key=lambda r: r["nll"])) if bases else None


def headline(folder: RunFolder, ev: dict | None, rows: list[dict]) -> str:
    """The strip at the top of the report: the model in words, then its scores, baseline and training time."""
    items = []
    what = model_words(folder)
    if what:
        items.append(f'<div class="what">{escape(what)}</div>')
    if isinstance(ev, dict):
        own = ev.get("estimators") if isinstance(ev.get("estimators"), dict) else {}
        n = f", {ev['n']} {ev.get('split', 'test')} points" if isinstance(ev.get("n"), int) else ""
        if isinstance(ev.get("nll"), (int, float)):
            how = own.get("nll") or (f"NLL-{ev.get('k')} = −IWAE-{ev.get('k')}" if ev.get("k") else "")
            items.append(f'<div id="headline-nll"><small>test NLL (nats / example, lower is better)</small>'
                         f'<span class="big">{escape(_number(ev["nll"]))}</span>'
                         f"<small>{escape(str(how))}{escape(n)}</small></div>")
        if isinstance(ev.get("elbo"), (int, float)):
            how = own.get("elbo") or "ELBO"
            items.append(f'<div><small>test ELBO (nats / example)</small><span class="big">'
                         f'{escape(_number(ev["elbo"]))}</span><small>{escape(str(how))}</small></div>')
        if isinstance(ev.get("perplexity"), (int, float)):
            how = own.get("perplexity") or "exp(−Σ ELBO / Σ tokens) over the test documents"
            items.append(f'<div><small>test perplexity (lower is better)</small><span class="big">'
                         f'{escape(_number(ev["perplexity"]))}</span><small>{escape(str(how))}</small></div>')
    found = best_baseline(folder.read_json("comparison.json"), None)
    if found:
        this, base = found
        diff = base["nll"] - this["nll"]
        verb = "beats" if diff > 0 else "trails"
        items.append(f"<div><small>against the best baseline on the same test points</small>"
                     f'<span class="big">{escape(verb)} by {escape(fmt(abs(diff)))}</span>'
                     f"<small>nats / example: {escape(str(base.get('name')))} at {escape(_number(base['nll']))} "
                     f"({escape(str(base.get('nll_estimator') or 'exact'))})</small></div>")
    elif isinstance(ev, dict) and isinstance(ev.get("nll"), (int, float)):
        model = "lda" if ev.get("likelihood") == "multinomial" else "mixture"
        items.append(f"<div><small>baseline</small><span>none compared yet</span><small>vaelab baseline --like RUN "
                     f"--model {model} --out DIR, then vaelab compare RUN --baseline DIR --update-reports"
                     "</small></div>")
    secs = [float(r["train_seconds"]) for r in rows if isinstance(r.get("train_seconds"), (int, float))]
    if secs:
        epochs = rows[-1].get("epoch", len(rows))
        items.append(f'<div><small>training time</small><span class="big">{escape(_duration(sum(secs)))}</span>'
                     f"<small>{escape(str(epochs))} epochs (validation excluded)</small></div>")
    return f'<section class="headline" aria-label="result">{"".join(items)}</section>' if items else ""


def _duration(seconds: float) -> str:
    """12.3 s, 4.5 min or 2.1 h."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
