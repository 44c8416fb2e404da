"""The report's sections, each from one file of the run folder: eval.json, metrics.jsonl, comparison.json,
amortization_gap.json, provenance.json and config.toml."""

from __future__ import annotations

import os
from html import escape
from typing import Any

from ..config.schema import Config
from ..runs import metrics
from .html import block, cell, flatten, fmt, href, table
from .table import NOTES, html_table

# shown for every run; other keys only where they matter to this run (key_settings)
KEY_SETTINGS = ("data", "model", "hidden", "latent_dim", "likelihood", "posterior", "prior", "estimator", "k",
                "epochs", "batch_size", "lr", "seed", "device", "precision")
DOCUMENT_ONLY = ("vocab_size", "stop_words", "min_df", "max_df", "npmi_window", "npmi_reference")
IMAGE_ONLY = ("image_size", "binarize", "dequantize", "posterior_scale")
DAE_ONLY = ("noise", "noise_level", "noise_mean")
NEVER = ("out", "shards", "cuda_graphs", "eval_batch")  # how the run was placed, not what it is


def key_settings(config: dict) -> dict[str, Any]:
    """The config keys that matter to this run: the common ones, then those set away from their defaults,
    never vocabulary settings for images, image settings for documents, or noise settings but for a dae."""
    documents = config.get("likelihood") == "multinomial"
    defaults = Config().to_dict()
    skip = set(NEVER) | set(IMAGE_ONLY if documents else DOCUMENT_ONLY)
    if config.get("model") != "dae":
        skip |= set(DAE_ONLY)
    if config.get("model") in ("ae", "dae"):
        skip |= {"posterior", "prior", "k", "posterior_scale"}
    shown = {k: config[k] for k in KEY_SETTINGS if k in config and k not in skip}
    if documents:
        shown |= {k: config[k] for k in DOCUMENT_ONLY if k in config}
    elif config.get("likelihood") == "bernoulli":
        shown["binarize"] = config.get("binarize")
    shown |= {k: v for k, v in config.items() if k not in shown and k not in skip and not isinstance(v, dict)
              and k in defaults and v != defaults[k]}
    return {k: v for k, v in shown.items() if v is not None}


def config_section(config: dict) -> str:
    """The settings that matter, then the whole config.toml folded away."""
    return ("<h2>Config</h2>" + table(key_settings(config))
            + '<details><summary>full config (config.toml, resolved)</summary>' + table(flatten(config))
            + "</details>")


def eval_section(ev: dict) -> str:
    """The evaluation summary: every scalar with what it estimates, nested dicts as sub-tables."""
    keys = metrics.order(ev)
    scalars = [k for k in keys if not isinstance(ev[k], dict)]
    own = ev.get("estimators") if isinstance(ev.get("estimators"), dict) else {}  # the run's own words win (exact)
    rows = "".join(f"<tr><th>{escape(str(key))}</th>{cell(ev[key])}"
                   f"<td>{escape(str(own.get(key) or metrics.describe(key, ev.get('k'))))}</td></tr>"
                   for key in scalars)
    html = ["<h2>Evaluation</h2>",
            '<p class="note">Log-likelihood numbers are in nats per example (higher ELBO / IWAE is better, '
            "lower NLL is better).</p>",
            f"<table><tr><th>quantity</th><th>value</th><th>estimator</th></tr>{rows}</table>"]
    for key in keys:
        if isinstance(ev[key], dict):
            html += [f"<h3>{escape(str(key))}</h3>", table(ev[key])]
    return "".join(html)


def training_section(rows: list[dict], k: Any = None, curves: str = "") -> str:
    """Epochs, final loss, best validation bound and total training time (and the curves figure)."""
    last = rows[-1]
    summary: dict[str, Any] = {"epochs": last.get("epoch", len(rows))}
    if "train_loss" in last:
        summary["final train loss (nats / example)"] = last["train_loss"]
    for key in metrics.VALIDATION_KEYS:
        found = metrics.best(rows, key)
        if found:
            name = metrics.label(key, k).removeprefix("val ")
            summary[f"best validation {name} (nats / example)"] = found[0]
            summary[f"epoch of best validation {name}"] = found[1]
    secs = [float(r["train_seconds"]) for r in rows if isinstance(r.get("train_seconds"), (int, float))]
    if secs:
        summary["total training seconds"] = sum(secs)
        summary["mean seconds / epoch"] = sum(secs) / len(secs)
    return "<h2>Training</h2>" + table(summary) + curves


def comparison_section(data: dict) -> str:
    """This run's place in the last `vaelab compare` table, its own row highlighted, every row linked."""
    rows = data.get("rows") if isinstance(data.get("rows"), list) else []
    place = f"rank {data.get('rank')} of {data.get('of')} by test NLL" if data.get("rank") else "no test NLL"
    links = data.get("links") if isinstance(data.get("links"), dict) else {}
    try:
        html = html_table([r for r in rows if isinstance(r, dict)], highlight=data.get("this"), links=links)
    except (KeyError, TypeError, ValueError):
        return "<h2>Comparison</h2>" + block(data)
    page = data.get("page")
    where = (f'<a href="{escape(href(page))}">{escape(os.path.basename(page))}</a>' if isinstance(page, str)
             else escape(str(data.get("table", ""))))
    return (f"<h2>Comparison</h2><p>This run (highlighted): <b>{escape(place)}</b>, "
            f"from {where} written {escape(str(data.get('written', '')))}.</p>"
            f'{html}<p class="note">{escape(NOTES)}</p>')


GAP_COLUMNS = (("epoch", "epoch"), ("weights", "weights"), ("points", "points"), ("amortized_elbo", "amortized ELBO"),
               ("optimized_elbo", "optimised ELBO"), ("gap", "amortization gap"),
               ("points_with_negative_gap", "points with gap < 0"), ("iwae", "IWAE-k (log p(x))"),
               ("approximation_gap", "approximation gap"), ("seconds_per_point_amortized", "s / point, encoder"),
               ("seconds_per_point_optimized", "s / point, optimised"))


def gap_section(data: dict) -> str:
    """The amortization gap for every measured checkpoint, one row each."""
    entries = [e for e in data.get("checkpoints", [data]) if isinstance(e, dict)]
    head = "<tr>" + "".join(f"<th>{escape(t)}</th>" for _, t in GAP_COLUMNS) + "</tr>"
    body = "".join("<tr>" + "".join(cell(e.get(k)) for k, _ in GAP_COLUMNS) + "</tr>" for e in entries)
    notes = data.get("estimators") if isinstance(data.get("estimators"), dict) else {}
    return ("<h2>Amortization gap</h2><p class=\"note\">From amortization_gap.json. Decoder frozen; nats per point, "
            "test split. The gap is what the encoder loses against per-point optimised posteriors started "
            "from its output.</p>"
            f"<table>{head}{body}</table>" + (table(notes) if notes else ""))


PROVENANCE_ROWS = (("command", "command line"), ("started", "started (UTC)"), ("finished", "finished (UTC)"),
                   ("wall_seconds", "wall seconds"), ("epochs", "epochs trained"), ("vaelab", "vaelab"),
                   ("torch", "torch"), ("python", "Python"), ("numpy", "NumPy"), ("git_commit", "git commit (cwd)"),
                   ("vaelab_git_commit", "vaelab source commit"), ("device", "device"), ("cpu", "CPU"),
                   ("gpu", "GPU"), ("cuda", "CUDA"), ("threads", "threads"), ("precision", "precision"),
                   ("precision_why", "why this precision"), ("seed", "seed"), ("platform", "platform"),
                   ("cwd", "working folder"))


def _provenance_value(s: dict, key: str) -> str:
    if key == "epochs":
        first, last = s.get("first_epoch"), s.get("last_epoch")
        return "–" if last is None else ("none" if last < first else f"{first}–{last}")
    value = s.get(key)
    if key == "git_commit" and value and s.get("git_dirty"):
        return f"{value} (with uncommitted changes)"
    if key == "finished" and value is None:
        return "not finished (stopped or still running)"
    return fmt(value)


def provenance_section(sessions: list[dict]) -> str:
    """How the run was made: one column per training session (a resume adds one)."""
    head = "<tr><th></th>" + "".join(f"<th>session {i}</th>" for i in range(1, len(sessions) + 1)) + "</tr>"
    body = []
    for key, title in PROVENANCE_ROWS:
        values = [_provenance_value(s, key) for s in sessions]
        if all(v == "–" for v in values) and key in ("gpu", "cuda", "git_commit", "vaelab_git_commit"):
            continue
        wrap = (lambda v: f"<td><code>{escape(v)}</code></td>") if key == "command" else \
            (lambda v: f"<td>{escape(v)}</td>")
        body.append(f"<tr><th>{escape(title)}</th>" + "".join(wrap(v) for v in values) + "</tr>")
    return ('<h2>Provenance</h2><p class="note">From provenance.json, recorded while training.</p>'
            f"<table>{head}{''.join(body)}</table>")
