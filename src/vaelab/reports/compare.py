"""One table for the whole family: trained runs and fitted baselines side by side, ranked by test NLL.

`vaelab compare RUN ... --baseline DIR ...` writes OUT/compare.md and OUT/compare.html (OUT defaults to
comparison-NAME+NAME..., and an existing comparison is replaced only with --overwrite); with --update-reports
every run folder also gets a comparison.json (the table and its own row), which its report.html shows.
Every number comes from a file the run or baseline already wrote (eval.json, metrics.jsonl,
amortization_gap.json, baseline.json); nothing is re-estimated here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
from html import escape
from pathlib import Path
from typing import Any

from .. import models
from ..atomic import atomic_write
from ..baselines import mixtures as baselines
from ..config import schema as cfg
from ..errors import AlreadyThere, VaelabError
from ..runs import loading
from ..runs.folder import COMPARISON, GAP, RunFolder
from .html import CSS, figure, page
from .report import write_report
from .table import html_table, markdown, notes


def _points(c: cfg.Config, split: str, n: Any, of: Any = None) -> str:
    """data/treatment/split/n (of: the split's size when only its first n were scored): rows with equal strings
    were scored on the same inputs."""
    if c.likelihood == "bernoulli" and c.binarize:
        how = "binarized"
    elif c.likelihood != "bernoulli" and c.dequantize:
        how = "dequantized"
    else:
        how = "as stored"
    return f"{c.data} {split} ({f'first {n} of {of}' if of else n}, {how})"


def describe(c: cfg.Config, data_dim: int | None = None) -> str:
    """A short model description: name, sizes, estimator and whatever differs from the defaults."""
    est = models.estimator_for(c)
    z = "+".join(map(str, cfg.latent_sizes(c)))  # 40+20: one size per stochastic layer, bottom first
    dims = ((data_dim,) if data_dim else ()) + (*c.hidden, z)
    sizes = "-".join(map(str, dims)) if c.model != "conv-vae" else f"conv, z={z}"
    if models.spec(c.model).images:  # the autoregressive models: the PixelCNN's sizes
        sizes = f"{c.pixel_layers} gated layers x {c.pixel_channels}, kernel {c.pixel_kernel}"
        sizes += f", row context {c.pixel_context}" if c.pixel_context else ""
        sizes += f", z={c.latent_dim}" if c.model not in ("pixelcnn", "vqvae", "code-prior") else ""
    if c.model == "vqvae":  # reconstruction only: no bound
        sizes = f"conv, codebook {c.codebook_size} x {c.code_dim}, reconstruction only"
    if c.model == "code-prior":  # the VQ bound log p(x|z_q) + log p(z_q): a point-mass q, so every k is the same
        est = "vq bound"
        sizes += f", prior over the codes of {Path(c.codes or '').name}, VQ bound"
    parts = [f"{c.model} {sizes}", c.likelihood]
    if est == "exact":
        parts.append("exact log p(x)")
    elif est == "iwae":
        parts.append(f"IWAE-{c.k}")
    elif est == "sgvb-b" and models.kl_note(c):
        parts.append("SGVB-A (no closed-form KL)" + (f" k={c.k}" if c.k > 1 else ""))
    elif est in ("sgvb-a", "sgvb-b"):
        parts.append(est.upper() + (f" k={c.k}" if c.k > 1 else ""))
    if models.spec(c.model).estimator is None and c.posterior != "gaussian":
        parts.append(f"{c.posterior} q")
    if c.prior == "vamp":
        parts.append(f"VampPrior K={c.pseudo_inputs}")
    elif models.spec(c.model).estimator is None and c.prior != "normal":
        parts.append(f"{c.prior} prior" + (f" (alpha {c.alpha:g})" if c.prior == "dirichlet-laplace" else ""))
    if c.flow != "none":
        parts.append(f"{c.flow} flow x{c.flow_steps}")
    if c.free_bits:
        parts.append(f"free bits {c.free_bits:g}")
    if c.model == "dae":
        parts.append(f"{c.noise} {c.noise_level:g}")
    if c.ema:  # the scored weights are a moving average (training/averaging.py)
        parts.append(f"weights averaged (ema {c.ema:g})")
    return ", ".join(parts)


FACTOR_KEYS = ("mig", "dci_disentanglement", "sap", "factorvae_score")  # from evals/test-factors.json


def run_row(run: str | Path) -> dict[str, Any]:
    """The table row of one run folder (needs eval.json)."""
    folder = RunFolder(run)
    run = folder.path
    c = folder.read_config()
    ev = folder.history.read_eval()
    if ev is None:
        raise VaelabError(f"{run} has no readable eval.json; run `vaelab evaluate {run}` first")
    if ev.get("stale"):
        raise VaelabError(f"{run}'s eval.json scored weights it has since replaced (trained on after it); "
                          f"run `vaelab evaluate {run}` again")
    _, model = loading.load_model(run)
    metrics = folder.read_metrics()
    gap = folder.read_json(GAP)
    gap = gap if isinstance(gap, dict) else {}
    k = ev.get("k")
    low = ev.get("precision") if ev.get("precision", "fp32") != "fp32" else None  # bf16/tf32, asked for: said
    row = {
        "kind": "run", "path": str(run), "name": run.name, "model": describe(c, getattr(model, "data_dim", None)),
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": sum(float(m.get("train_seconds", 0.0)) for m in metrics) if metrics else None,
        "elbo": ev.get("elbo"), "iwae": ev.get("iwae"), "nll": ev.get("nll"),
        "nll_estimator": None if "nll" not in ev else ("exact" if "logp" in ev else f"NLL-{k}")
        + (f", {low}" if low else ""), "k": k, "precision": low,
        "active_units": ev.get("active_units"),
        "recon_error": -ev["recon"] if isinstance(ev.get("recon"), (int, float)) else None,
        "noisy_recon_error": ev.get("noisy_recon_error"), "noise": ev.get("noise"),
        "gap": gap.get("gap"), "gap_epoch": gap.get("epoch"),
        "perplexity": ev.get("perplexity"), "npmi": ev.get("npmi"), "diversity": ev.get("diversity"),
        "purity": ev.get("purity"),
        **{key: (folder.history.read_factors() or {}).get(key) for key in FACTOR_KEYS},
        "test_points": _points(c, ev.get("split", "test"), ev.get("n"), ev.get("split_points")),
    }
    return row


def baseline_row(path: str | Path) -> dict[str, Any]:
    """The table row of one baseline folder (its baseline.json)."""
    b = baselines.load(path)
    name = Path(path).name if Path(path).is_dir() else Path(path).parent.name
    try:
        c = cfg.from_dict(b.get("config", {}))
    except VaelabError:
        c = cfg.Config(data=b.get("data", "?"))
    return {
        "kind": "baseline", "path": str(path), "name": name,
        "model": f"baseline {b['baseline']}: {b.get('family', '')}",
        "params": b.get("params"), "train_seconds": b.get("seconds"),
        # LDA: its per-document bound like a VAE's ELBO, not scikit-learn's with the topic-word KL (topics/lda.py)
        "nll": b.get("nll_elbo", b.get("nll")),
        "nll_estimator": b.get("nll_elbo_estimator") if "nll_elbo" in b else
        b.get("nll_estimator", "exact") if "nll" in b else None,
        "perplexity": b.get("perplexity_elbo", b.get("perplexity")),
        "npmi": b.get("npmi"), "diversity": b.get("diversity"),
        "purity": b.get("purity"), "test_points": _points(c, "test", b.get("n")),
    }


# compare.html fits a 1280-pixel window: a wider body and a smaller table font; lines break only where the text
# allows (spaces, and after the '-' between a sweep name's parts), never inside a word or a number
WIDE_CSS = CSS + """
body{max-width:1240px}table.compare{font-size:.8em;line-height:1.3}table.compare th,table.compare td{padding:.2em .4em}
table.compare td,table.compare th{overflow-wrap:normal;word-break:normal;hyphens:manual}
table.compare td.best{font-weight:700;background:#e3f2e1}tr.best-row td.name{font-weight:700}
.badge{display:inline-block;font-size:1em;font-weight:600;background:#2e7d32;color:#fff;border-radius:3px;
padding:0 .35em;margin-left:.3em}
.gallery section{border-top:1px solid #e3e3e3;padding:.4em 0}.gallery h3{margin:.3em 0}
.thumbs{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:.8em;align-items:start}
.thumbs figure{margin:0}.thumbs figcaption{font-size:.88em}
.thumbs img{max-height:260px;width:auto;max-width:100%}
@media (max-width:700px){.thumbs{grid-template-columns:1fr}table.compare{font-size:.8em}}
"""
# a run's thumbnails on the comparison page: pictures for images, topic words for documents; the curves always
THUMBS = (("samples", "samples from the prior"), ("recon", "test images above their reconstructions"),
          ("topics", "topic words"), ("latent", "test posterior means"), ("curves", "learning curves"))
THUMB_COUNT = 3


def target(row: dict[str, Any]) -> Path:
    """What a row links to: a run's report.html, a baseline's baseline.json."""
    path = Path(row["path"])
    if row["kind"] == "run":
        return RunFolder(path).report
    return path / "baseline.json" if path.is_dir() else path


def links(rows: list[dict[str, Any]], base: Path) -> dict[str, str]:
    """Each row's path -> the relative link to its target from the folder base."""
    return {r["path"]: Path(os.path.relpath(target(r).resolve(), base.resolve())).as_posix() for r in rows}


def thumbnails(row: dict[str, Any], out: Path) -> str:
    """One run's pictures side by side (samples, reconstructions or topics, learning curves), each inlined and
    linking to its PNG full size; a baseline has none."""
    if row["kind"] != "run":
        return ""
    plots = RunFolder(row["path"]).plots
    found = [(plots / f"{stem}.png", caption) for stem, caption in THUMBS if (plots / f"{stem}.png").is_file()]
    if len(found) > THUMB_COUNT and (plots / "curves.png").is_file():  # keep the curves, drop the middle ones
        found = found[:THUMB_COUNT - 1] + found[-1:]
    return "".join(figure(path, caption, link=Path(os.path.relpath(path.resolve(), out.resolve())).as_posix())
                   for path, caption in found[:THUMB_COUNT])


def gallery(rows: list[dict[str, Any]], out: Path) -> str:
    """A section per run, in the table's order: its name, rank and model, then its thumbnails side by side."""
    items = []
    for r in rows:
        pictures = thumbnails(r, out)
        if not pictures:
            continue
        place = f"#{r['rank']} " if r.get("rank") else ""
        items.append(f"<section><h3>{escape(place)}{escape(r['name'])}</h3><p class=\"note\">{escape(r['model'])}</p>"
                     f'<div class="thumbs">{pictures}</div></section>')
    return ('<h2>Side by side</h2><p class="note">Each run\'s samples, reconstructions (or topic words) and learning '
            'curves; a picture opens full size.</p><div class="gallery">' + "".join(items) + "</div>") if items else ""


def html_page(rows: list[dict[str, Any]], out: Path, stamp: str) -> str:
    """compare.html: the table (every row's name linking to its report, the best values marked), every note of
    compare.md, then each run's pictures side by side."""
    body = (f"<h1>Comparison</h1>{html_table(rows, links=links(rows, out))}"
            + "".join(f'<p class="note">{escape(n)}</p>' for n in notes(rows))
            + gallery(rows, out) + f"<footer>written by vaelab compare on {escape(stamp)}</footer>")
    return page("vaelab comparison", body, WIDE_CSS)


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by test NLL (lowest first; rows without one last), each given its rank."""
    def key(r: dict) -> float:
        v = r.get("nll")
        return v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf

    out = sorted(rows, key=key)
    for i, r in enumerate(out, 1):
        r["rank"] = i if key(r) < math.inf else None
    return out


def default_out(run_paths: list[str], baseline_paths: list[str] = ()) -> Path:
    """comparison-NAME+NAME+... in the working folder, from the compared folders' names (letters, digits, '.', '_'
    and '-' kept); a long list is cut and given a hash of every path, so different runs get different folders."""
    names = [Path(p).resolve().name for p in [*run_paths, *baseline_paths]]
    slug = "+".join(re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("._") or "run" for n in names)
    if len(slug) > 60:
        digest = hashlib.sha256("\0".join(str(Path(p).resolve()) for p in [*run_paths, *baseline_paths])
                                .encode("utf-8", "surrogateescape")).hexdigest()[:8]
        slug = f"{slug[:50].rstrip('+._-')}+{len(names) - 1}-more-{digest}"
    return Path(f"comparison-{slug}")


def compare(run_paths: list[str], baseline_paths: list[str] = (), out: str | Path | None = None,
            update_runs: bool = False, overwrite: bool = False) -> tuple[list[dict[str, Any]], Path]:
    """Build the table and write OUT/compare.md and OUT/compare.html (OUT: default_out of the folders).

    An OUT that already holds a comparison is refused unless overwrite; update_runs gives each run its
    comparison.json and rewrites its report.html (nothing in the compared folders is touched otherwise).
    """
    if not run_paths and not baseline_paths:
        raise VaelabError("compare needs at least one run or baseline folder")
    out = Path(out) if out is not None else default_out(run_paths, baseline_paths)
    if out.exists() and not out.is_dir():
        raise VaelabError(f"{out} is a file, not a folder")
    held = [n for n in ("compare.md", "compare.html") if (out / n).exists()]
    if held and not overwrite:
        raise AlreadyThere(f"{out} already holds a comparison ({held[0]}); overwrite=True replaces it, or another "
                           f"out writes this one elsewhere", out, "comparison")
    rows = rank([run_row(p) for p in run_paths] + [baseline_row(p) for p in baseline_paths])  # all read first
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows)
    atomic_write(out / "compare.md", md.encode())
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    atomic_write(out / "compare.html", html_page(rows, out, stamp).encode())
    if update_runs:
        ranked = [r for r in rows if r["rank"] is not None]
        for r in rows:
            if r["kind"] != "run":
                continue
            run = Path(r["path"])
            place = {"rank": r["rank"], "of": len(ranked), "rows": rows, "this": r["path"],
                     "written": stamp, "table": str(out / "compare.md"), "links": links(rows, run),
                     "page": Path(os.path.relpath((out / "compare.html").resolve(), run.resolve())).as_posix()}
            RunFolder(r["path"]).write_json(COMPARISON, place)
            write_report(r["path"])
    return rows, out
