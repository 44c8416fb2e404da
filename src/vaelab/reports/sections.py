"""The report's sections, each from one file of the run folder: eval.json, metrics.jsonl, comparison.json,
amortization_gap.json, provenance.json and config.toml."""

from __future__ import annotations

import os
from html import escape
from typing import Any

from ..config.schema import Config
from ..runs import metrics
from .html import block, cell, flatten, fmt, href, scroll, table
from .table import html_table, notes

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
            scroll(f"<table><tr><th>quantity</th><th>value</th><th>estimator</th></tr>{rows}</table>")]
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
    kept = [r for r in rows if isinstance(r, dict)]
    try:
        html = html_table(kept, highlight=data.get("this"), links=links)
    except (KeyError, TypeError, ValueError):
        return "<h2>Comparison</h2>" + block(data)
    page = data.get("page")
    where = (f'<a href="{escape(href(page))}">{escape(os.path.basename(page))}</a>' if isinstance(page, str)
             else escape(str(data.get("table", ""))))
    return (f"<h2>Comparison</h2><p>This run (highlighted): <b>{escape(place)}</b>, "
            f"from {where} written {escape(str(data.get('written', '')))}.</p>"
            + html + "".join(f'<p class="note">{escape(n)}</p>' for n in notes(kept)))


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
            f"{scroll(f'<table>{head}{body}</table>')}" + (table(notes) if notes else ""))


PROVENANCE_ROWS = (("command", "command line"), ("started", "started (UTC)"), ("finished", "finished (UTC)"),
                   ("wall_seconds", "wall seconds"), ("epochs", "epochs trained"), ("vaelab", "vaelab"),
                   ("torch", "torch"), ("python", "Python"), ("numpy", "NumPy"), ("git_commit", "git commit (cwd)"),
                   ("vaelab_git_commit", "vaelab source commit"), ("device", "device"), ("cpu", "CPU"),
                   ("gpu", "GPU"), ("cuda", "CUDA"), ("threads", "threads"), ("processes", "processes (torchrun)"),
                   ("precision", "precision"), ("precision_why", "why this precision"), ("seed", "seed"),
                   ("platform", "platform"), ("cwd", "working folder"))


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


ROW_KEYS = ("started", "finished", "wall_seconds", "epochs", "command")  # a row per session shows these always
HIDE_EMPTY = ("gpu", "cuda", "git_commit", "vaelab_git_commit", "processes")


def trained_nothing(s: dict) -> bool:
    """A session that trained no epoch: a resume of a run that had already finished its epochs."""
    first, last = s.get("first_epoch"), s.get("last_epoch")
    return isinstance(first, int) and isinstance(last, int) and last < first


def provenance_section(sessions: list[dict]) -> str:
    """How the run was made: one row per training session, newest first, with the keys that differ between
    sessions as columns; what every session shares once, below. Sessions that trained nothing are counted, not shown."""
    shown = [s for s in sessions if not trained_nothing(s)] or sessions[-1:]
    idle = len(sessions) - len(shown)
    titles = dict(PROVENANCE_ROWS)
    values = {key: [_provenance_value(s, key) for s in shown] for key, _ in PROVENANCE_ROWS}
    values = {k: v for k, v in values.items() if not (k in HIDE_EMPTY and all(x == "–" for x in v))}
    varying = [k for k, _ in PROVENANCE_ROWS if k in values and (k in ROW_KEYS or len(set(values[k])) > 1)]
    shared = [k for k, _ in PROVENANCE_ROWS if k in values and k not in varying]

    def td(key: str, v: str) -> str:
        return f"<td><code>{escape(v)}</code></td>" if key == "command" else f"<td>{escape(v)}</td>"

    head = "<tr><th>session</th>" + "".join(f"<th>{escape(titles[k])}</th>" for k in varying) + "</tr>"
    number = {id(s): i for i, s in enumerate(sessions, 1)}
    body = "".join(f"<tr><th>{number[id(s)]}</th>" + "".join(td(k, values[k][i]) for k in varying) + "</tr>"
                   for i, s in reversed(list(enumerate(shown))))
    common = "".join(f"<tr><th>{escape(titles[k])}</th>{td(k, values[k][0])}</tr>" for k in shared)
    note = "From provenance.json, recorded while training; newest session first."
    if idle:
        note += (f" {idle} more session{'s' if idle > 1 else ''} resumed the run after its last epoch and trained "
                 "nothing (not shown).")
    label = "every session" if len(shown) > 1 else "the session"
    return (f'<h2>Provenance</h2><p class="note">{escape(note)}</p>'
            f"{scroll(f'<table>{head}{body}</table>')}"
            + (f"<h3>Shared by {label}</h3>{scroll(f'<table>{common}</table>')}" if common else ""))
