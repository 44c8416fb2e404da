"""One self-contained HTML page from a run folder: evaluation, training, config and every plot inlined."""

from __future__ import annotations

import base64
import datetime as dt
import math
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from . import metrics
from .run_folder import COMPARISON, GAP, RunFolder
from .table import NOTES, html_table

PLOT_ORDER = ("curves", "recon", "samples", "latent", "manifold", "interp", "topics")
CAPTIONS = {
    "curves": "Training loss and negative validation bound per epoch (nats per example), and seconds per epoch.",
    "recon": "Test examples (data) above their reconstructions (decoder mean at the posterior mean).",
    "samples": "Decoder means for 64 draws z ~ p(z) from the prior.",
    "latent": "Posterior means of the test split, coloured by label (PCA to 2-D when the latent has more dims).",
    "manifold": "Decoder means over a grid of latent coordinates (highest z2 at the top).",
    "interp": "Decoded straight-line paths in latent space between two test images (framed columns are data).",
    "topics": "For each latent dimension, the words at its + end and at its − end (largest and most negative "
              "weights in its column of R).",
}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.92em}.note{color:#666;font-size:.92em}
footer{margin-top:3em;color:#888;font-size:.85em;border-top:1px solid #eee;padding-top:.5em}
"""


def fmt(value: Any) -> str:
    """A scalar as text: ints as-is, floats with 4 decimals (2 from 1000 up; scientific if tiny or huge)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "–"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        a = abs(value)
        if a == 0:
            return "0"
        if a >= 1e6 or a < 1e-3:
            return f"{value:.3e}"
        return f"{value:.2f}" if a >= 1000 else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _cell(value: Any) -> str:
    """A table cell: numbers right-aligned, nested dicts as sub-tables, everything escaped."""
    if isinstance(value, dict):
        return f"<td>{_table(value)}</td>"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "<td>" + "".join(_table(v) for v in value) + "</td>"
    cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{cls}>{escape(fmt(value))}</td>"


def _table(d: dict, header: tuple[str, ...] = ()) -> str:
    """A key/value table of a dict, recursing into nested dicts."""
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(f"<tr><th>{escape(str(k))}</th>{_cell(v)}</tr>" for k, v in d.items())
    return f"<table>{head}{body}</table>"


def _block(data: Any) -> str:
    """Any parsed JSON value as HTML: dicts and lists of dicts as tables, other values as text."""
    if isinstance(data, dict):
        return _table(data)
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        return "".join(_table(v) for v in data)
    if data is None:
        return '<p class="note">(missing, empty or not valid JSON)</p>'
    return f"<p>{escape(fmt(data))}</p>"


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flatten(v, key + ".")
        else:
            out[key] = v
    return out


def _eval_section(ev: dict) -> str:
    """The evaluation summary: every scalar with what it estimates, nested dicts as sub-tables."""
    keys = metrics.order(ev)
    scalars = [k for k in keys if not isinstance(ev[k], dict)]
    own = ev.get("estimators") if isinstance(ev.get("estimators"), dict) else {}  # the run's own words win (exact)
    rows = "".join(f"<tr><th>{escape(str(key))}</th>{_cell(ev[key])}"
                   f"<td>{escape(str(own.get(key) or metrics.describe(key, ev.get('k'))))}</td></tr>" for key in scalars)
    html = ["<h2>Evaluation</h2>",
            '<p class="note">Log-likelihood numbers are in nats per example (higher ELBO / IWAE is better, '
            "lower NLL is better).</p>",
            f"<table><tr><th>quantity</th><th>value</th><th>estimator</th></tr>{rows}</table>"]
    for key in keys:
        if isinstance(ev[key], dict):
            html += [f"<h3>{escape(str(key))}</h3>", _table(ev[key])]
    return "".join(html)


def _training_section(rows: list[dict], k: Any = None) -> str:
    """Epochs, final loss, best validation bound and total training time."""
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
    return "<h2>Training</h2>" + _table(summary)


def _plot_section(paths: list[Path]) -> str:
    """Every PNG inlined as a data URI, known plots first, each with a caption."""
    rank = {s: i for i, s in enumerate(PLOT_ORDER)}
    paths = sorted(paths, key=lambda p: (rank.get(p.stem, len(rank)), p.name))
    html = ["<h2>Plots</h2>"]
    for p in paths:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        caption = CAPTIONS.get(p.stem, p.name)
        html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(p.stem)}">'
                    f"<figcaption><b>{escape(p.stem)}</b>: {escape(caption)}</figcaption></figure>")
    return "".join(html)


def _comparison_section(data: dict) -> str:
    """This run's place in the last `vaelab compare` table, its own row highlighted."""
    rows = data.get("rows") if isinstance(data.get("rows"), list) else []
    place = f"rank {data.get('rank')} of {data.get('of')} by test NLL" if data.get("rank") else "no test NLL"
    try:
        table = html_table([r for r in rows if isinstance(r, dict)], highlight=data.get("this"))
    except (KeyError, TypeError, ValueError):
        return "<h2>Comparison</h2>" + _block(data)
    return (f"<h2>Comparison</h2><p>This run (highlighted): <b>{escape(place)}</b>, "
            f"from {escape(str(data.get('table', '')))} written {escape(str(data.get('written', '')))}.</p>"
            f'{table}<p class="note">{escape(NOTES)}</p>')


GAP_COLUMNS = (("epoch", "epoch"), ("weights", "weights"), ("points", "points"), ("amortized_elbo", "amortized ELBO"),
               ("optimized_elbo", "optimised ELBO"), ("gap", "amortization gap"),
               ("points_with_negative_gap", "points with gap < 0"), ("iwae", "IWAE-k (log p(x))"),
               ("approximation_gap", "approximation gap"), ("seconds_per_point_amortized", "s / point, encoder"),
               ("seconds_per_point_optimized", "s / point, optimised"))


def _gap_section(data: dict) -> str:
    """The amortization gap for every measured checkpoint, one row each."""
    entries = [e for e in data.get("checkpoints", [data]) if isinstance(e, dict)]
    head = "<tr>" + "".join(f"<th>{escape(t)}</th>" for _, t in GAP_COLUMNS) + "</tr>"
    body = "".join("<tr>" + "".join(_cell(e.get(k)) for k, _ in GAP_COLUMNS) + "</tr>" for e in entries)
    notes = data.get("estimators") if isinstance(data.get("estimators"), dict) else {}
    return ("<h2>Amortization gap</h2><p class=\"note\">From amortization_gap.json. Decoder frozen; nats per point, "
            "test split. The gap is what the encoder loses against per-point optimised posteriors started "
            "from its output.</p>"
            f"<table>{head}{body}</table>" + (_table(notes) if notes else ""))


SECTIONS = {COMPARISON: _comparison_section, GAP: _gap_section}


def _version() -> str:
    """The installed vaelab version, or '' when running from a source tree."""
    try:
        return metadata.version("vaelab")
    except metadata.PackageNotFoundError:
        return ""


def write_report(run_dir: str | Path) -> Path:
    """Write run_dir/report.html (self-contained: inline CSS, images as base64) and return its path."""
    folder = RunFolder(run_dir)
    run = folder.path
    parts = [f"<h1>{escape(run.resolve().name)}</h1>", f'<p class="note">run folder: {escape(str(run))}</p>']
    ev = folder.read_eval()
    if ev is not None:
        parts.append(_eval_section(ev))
    rows = folder.read_metrics()
    config = folder.read_config_table()
    if rows:
        parts.append(_training_section(rows, (config or {}).get("k")))
    for extra in folder.json_files():
        data = folder.read_json(extra.name)
        section = SECTIONS.get(extra.name)
        parts.append(section(data) if section and isinstance(data, dict) else
                     f"<h2>{escape(extra.stem)}</h2>{_block(data)}")
    if config:
        parts.append("<h2>Config</h2>" + _table(_flatten(config)))
    pngs = sorted(folder.plots.glob("*.png")) if folder.plots.is_dir() else []
    if pngs:
        parts.append(_plot_section(pngs))
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    version = _version()
    parts.append(f"<footer>written by vaelab{' ' + escape(version) if version else ''} on {escape(stamp)}</footer>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(run.resolve().name)} · vaelab report</title><style>{CSS}</style></head>"
            "<body>" + "\n".join(parts) + "</body></html>\n")
    return folder.write_report(page)
