"""One self-contained HTML page from a run folder: the headline numbers, the pictures, then the tables and files.

Sections come from reports/sections.py (one per file of the run), HTML pieces from reports/html.py.
"""

from __future__ import annotations

import datetime as dt
import os
from html import escape
from importlib import metadata
from pathlib import Path

from ..runs import folder as rf
from ..runs.folder import COMPARISON, EXPLORER, GAP, RunFolder
from .headline import headline
from .html import CSS, block, figure, href, page  # noqa: F401 (CSS: reports/compare.py's pages share it)
from .sections import (
    comparison_section,
    config_section,
    eval_section,
    gap_section,
    provenance_section,
    training_section,
)

PLOT_ORDER = ("samples", "recon", "manifold", "topics", "latent", "latent-epochs", "interp", "traversal",
              "curves")
HERO = ("samples", "recon", "manifold")  # at the top of an image run's report; a document run's: topics, latent
WIDE = ("manifold", "topics")  # drawn the page's full width (a manifold tile needs its pixels), the others side by side
CAPTIONS = {
    "curves": "Training loss and negative validation bound per epoch (nats per example), and seconds per epoch.",
    "recon": "Test images as grey values (the Bernoulli means their binarizations are drawn from) above the decoder "
             "mean at the posterior mean of the seeded binarization the model is scored on.",
    "latent-epochs": "Posterior means of the test split at each epoch whose weights were kept (--save-every), "
                     "one frame per epoch, on fixed axes.",
    "samples": "Decoder means for 64 draws z ~ p(z) from the prior.",
    "latent": "Posterior means of the test split, coloured by label (PCA to 2-D when the latent has more dims).",
    "manifold": "Decoder means over a grid of latent coordinates (highest z2 at the top).",
    "interp": "Decoded straight-line paths in latent space between two test images (framed columns are data; "
              "a conditional model's: two images of class 0, decoded with its label).",
    "traversal": "Latent traversals: each row sweeps one latent dimension over the prior's quantiles, the others "
                 "held at a test image's posterior mean (framed, left); a disentangled code changes one factor "
                 "per row.",
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


def _comparison_page(folder: RunFolder) -> str | None:
    """The relative path of the comparison page this run was last compared in (comparison.json), if it is there."""
    comparison = folder.read_json(COMPARISON)
    page = comparison.get("page") if isinstance(comparison, dict) else None
    return page if isinstance(page, str) and (folder.path / page).is_file() else None


def _quick_links(folder: RunFolder) -> str:
    """Under the headline: the explorer, the comparison page and the list of files."""
    items = []
    if folder.explorer.is_file():
        items.append(f'<a href="{href(EXPLORER)}">latent explorer</a> (decodes the latent space as the pointer '
                     "moves; works offline)")
    page = _comparison_page(folder)
    if page:
        items.append(f'<a href="{escape(href(page))}">comparison page</a>')
    items.append('<a href="#files">every file of the run</a>')
    return f'<p class="links">{" · ".join(items)}</p>'


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def run_files(folder: RunFolder) -> list[str]:
    """Every file of the run, relative to its folder (POSIX), sorted: none hidden (a write's temporary), not the
    report itself, tensorboard/ as one folder; never through a symbolic link."""
    root = folder.path
    found = []
    for here, dirs, files in os.walk(root):
        rel = Path(here).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(here) / d).is_symlink()
                         and not (rel == Path(".") and d == rf.TENSORBOARD))
        for name in files:
            path = Path(here) / name
            if name.startswith(".") or path.is_symlink() or (rel == Path(".") and name == rf.REPORT):
                continue
            found.append((rel / name).as_posix())
    return sorted(found, key=lambda f: (f.count("/"), f))


def files_section(folder: RunFolder) -> str:
    """Links to every file of the run (relative and percent-encoded, so the folder can move and any name works)."""
    items = [f'<li><a href="{escape(href(f))}">{escape(f)}</a> <span>{escape(_size((folder.path / f).stat().st_size))}'
             "</span></li>" for f in run_files(folder)]
    if folder.tensorboard.is_dir() and not folder.tensorboard.is_symlink():
        items.append(f'<li><a href="{escape(href(rf.TENSORBOARD + "/"))}">{rf.TENSORBOARD}/</a> '
                     "<span>(tensorboard --logdir)</span></li>")
    page = _comparison_page(folder)
    if page:
        items.append(f'<li><a href="{escape(href(page))}">{escape(page)}</a> <span>(the comparison page)</span></li>')
    return '<h2 id="files">Files</h2><ul class="files">' + "".join(items) + "</ul>"


def _plots(folder: RunFolder) -> dict[str, Path]:
    """stem -> picture, in PLOT_ORDER (unknown ones after, by name); an animation replaces nothing."""
    files = [p for p in sorted(folder.plots.glob("*")) if p.suffix in (".png", ".gif")
             and "-epoch-" not in p.stem] if folder.plots.is_dir() else []  # one epoch's plots: the animation has them
    rank = {s: i for i, s in enumerate(PLOT_ORDER)}
    return {p.stem: p for p in sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.name))}


def write_report(run_dir: str | Path) -> Path:
    """Write run_dir/report.html (self-contained: inline CSS, pictures as base64) and return its path.

    The headline (the model in words, its test scores, the baseline it beats, training time) first, then the
    pictures (each a link to the PNG at full size), then the tables, then every file of the run.
    """
    folder = RunFolder(run_dir)
    run = folder.path
    config = folder.read_config_table()
    pictures = _plots(folder)
    hero = [s for s in HERO if s in pictures] or [s for s in ("topics", "latent") if s in pictures]
    captions = CAPTIONS | {"samples": SAMPLE_CAPTIONS.get((config or {}).get("model"), CAPTIONS["samples"])}
    ev = folder.history.read_eval()
    rows = folder.read_metrics()

    def fig(stem: str, cls: str = "") -> str:
        path = pictures.pop(stem)
        return figure(path, captions.get(stem, path.name), link=path.relative_to(run).as_posix(), cls=cls)

    parts = [f"<h1>{escape(run.resolve().name)}</h1>", headline(folder, ev, rows), _quick_links(folder)]
    side: list[str] = []  # pictures side by side until a wide one, which takes the page's width
    for stem in [*hero, None]:
        if (stem is None or stem in WIDE) and side:
            parts.append('<div class="hero">' + "".join(fig(s) for s in side) + "</div>")
            side = []
        if stem in WIDE:
            parts.append(fig(stem, "wide"))
        elif stem is not None:
            side.append(stem)
    curves = pictures.pop("curves", None)
    if pictures:
        parts.append("<h2>Plots</h2>" + "".join(fig(s) for s in list(pictures)))
    if ev is not None:
        parts.append(eval_section(ev))
    if rows:
        parts.append(training_section(rows, (config or {}).get("k"), figure(
            curves, CAPTIONS["curves"], link=curves.relative_to(run).as_posix()) if curves else ""))
    for extra in folder.json_files():
        data = folder.read_json(extra.name)
        section = SECTIONS.get(extra.name)
        parts.append(section(data) if section and isinstance(data, dict) else
                     f"<h2>{escape(extra.stem)}</h2>{block(data)}")
    sessions = folder.read_provenance()
    if sessions:
        parts.append(provenance_section(sessions))
    if config:
        parts.append(config_section(config))
    parts.append(files_section(folder))
    parts.append(f'<p class="note">run folder: {escape(str(run))}</p>')
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    version = _version()
    parts.append(f"<footer>written by vaelab{' ' + escape(version) if version else ''} on {escape(stamp)}</footer>")
    return folder.write_report(page(f"{run.resolve().name} · vaelab report", "\n".join(p for p in parts if p)))
