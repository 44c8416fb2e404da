"""One self-contained HTML page from a run folder: the pictures first, then the numbers, provenance and config.

Sections come from reports/sections.py (one per file of the run), HTML pieces from reports/html.py.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from importlib import metadata
from pathlib import Path

from ..runs import folder as rf
from ..runs.folder import COMPARISON, EXPLORER, GAP, RunFolder
from .html import CSS, block, figure, href, page  # noqa: F401 (CSS: reports/compare.py's pages share it)
from .sections import (
    comparison_section,
    config_section,
    eval_section,
    gap_section,
    provenance_section,
    training_section,
)

PLOT_ORDER = ("samples", "recon", "manifold", "topics", "latent", "latent-epochs", "interp", "curves")
HERO = ("samples", "recon", "manifold")  # at the top of an image run's report; a document run's: topics, latent
CAPTIONS = {
    "curves": "Training loss and negative validation bound per epoch (nats per example), and seconds per epoch.",
    "recon": "Test images as grey values (the Bernoulli means their binarizations are drawn from) above the decoder "
             "mean at the posterior mean of the seeded binarization the model is scored on.",
    "latent-epochs": "Posterior means of the test split at each epoch whose weights were kept (--save-every), "
                     "one frame per epoch, on fixed axes.",
    "samples": "Decoder means for 64 draws z ~ p(z) from the prior.",
    "latent": "Posterior means of the test split, coloured by label (PCA to 2-D when the latent has more dims).",
    "manifold": "Decoder means over a grid of latent coordinates (highest z2 at the top).",
    "interp": "Decoded straight-line paths in latent space between two test images (framed columns are data).",
    "topics": "For each latent dimension, the words at its + end and at its − end (largest and most negative "
              "weights in its column of R).",
}
# the samples of the autoregressive models are drawn, not decoder means
SAMPLE_CAPTIONS = {
    "pixelcnn": "64 images drawn pixel by pixel from p(x) = prod_i p(x_i | x_<i), seeded.",
    "pixel-vae": "64 draws z ~ p(z), each image then drawn pixel by pixel from the PixelCNN decoder p(x | z), seeded.",
}

SECTIONS = {COMPARISON: comparison_section, GAP: gap_section}


def _version() -> str:
    """The installed vaelab version, or '' when running from a source tree."""
    try:
        return metadata.version("vaelab")
    except metadata.PackageNotFoundError:
        return ""


def _links(folder: RunFolder) -> str:
    """Links to the run's own files (relative, so the folder can move) and to the comparison page."""
    names = [rf.CONFIG, rf.METRICS, rf.EVAL, rf.PROVENANCE, *(p.name for p in folder.json_files()), rf.EXPLORER]
    items = [(n, n) for n in dict.fromkeys(names) if (folder / n).is_file()]
    if folder.tensorboard.is_dir():
        items.append((f"{rf.TENSORBOARD}/", f"{rf.TENSORBOARD}/ (tensorboard --logdir)"))
    comparison = folder.read_json(COMPARISON)
    if isinstance(comparison, dict) and isinstance(comparison.get("page"), str):
        items.append((comparison["page"], "comparison page"))
    html = "".join(f'<a href="{escape(href(link))}">{escape(text)}</a>' for link, text in items)
    return f'<p class="links">{html}</p>'


def _plots(folder: RunFolder) -> dict[str, Path]:
    """stem -> picture, in PLOT_ORDER (unknown ones after, by name); an animation replaces nothing."""
    files = [p for p in sorted(folder.plots.glob("*")) if p.suffix in (".png", ".gif")
             and "-epoch-" not in p.stem] if folder.plots.is_dir() else []  # one epoch's plots: the animation has them
    rank = {s: i for i, s in enumerate(PLOT_ORDER)}
    return {p.stem: p for p in sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.name))}


def write_report(run_dir: str | Path) -> Path:
    """Write run_dir/report.html (self-contained: inline CSS, pictures as base64) and return its path."""
    folder = RunFolder(run_dir)
    run = folder.path
    config = folder.read_config_table()
    pictures = _plots(folder)
    hero = [s for s in HERO if s in pictures] or [s for s in ("topics", "latent") if s in pictures]
    captions = CAPTIONS | {"samples": SAMPLE_CAPTIONS.get((config or {}).get("model"), CAPTIONS["samples"])}
    parts = [f"<h1>{escape(run.resolve().name)}</h1>", f'<p class="note">run folder: {escape(str(run))}</p>',
             _links(folder)]
    if folder.explorer.is_file():
        parts.append(f'<p><a href="{href(EXPLORER)}">Open the latent explorer</a> (decodes the latent space as the '
                     "pointer moves; works offline).</p>")
    if hero:
        parts.append('<div class="hero">' + "".join(figure(pictures.pop(s), captions[s]) for s in hero) + "</div>")
    ev = folder.read_eval()
    if ev is not None:
        parts.append(eval_section(ev))
    rows = folder.read_metrics()
    if rows:
        curves = pictures.pop("curves", None)
        parts.append(training_section(rows, (config or {}).get("k"),
                                      figure(curves, CAPTIONS["curves"]) if curves else ""))
    for extra in folder.json_files():
        data = folder.read_json(extra.name)
        section = SECTIONS.get(extra.name)
        parts.append(section(data) if section and isinstance(data, dict) else
                     f"<h2>{escape(extra.stem)}</h2>{block(data)}")
    if pictures:
        parts.append("<h2>Plots</h2>" + "".join(figure(p, captions.get(s, p.name)) for s, p in pictures.items()))
    sessions = folder.read_provenance()
    if sessions:
        parts.append(provenance_section(sessions))
    if config:
        parts.append(config_section(config))
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    version = _version()
    parts.append(f"<footer>written by vaelab{' ' + escape(version) if version else ''} on {escape(stamp)}</footer>")
    return folder.write_report(page(f"{run.resolve().name} · vaelab report", "\n".join(parts)))
