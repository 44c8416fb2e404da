"""One table for the whole family: trained runs and fitted baselines side by side, ranked by test NLL.

`vaelab compare RUN ... --baseline DIR ...` writes OUT/compare.md and OUT/compare.html, and gives
every run folder a comparison.json (the table and its own row), which its report.html shows.
Every number comes from a file the run or baseline already wrote (eval.json, metrics.jsonl,
amortization_gap.json, baseline.json); nothing is re-estimated here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from html import escape
from pathlib import Path
from typing import Any

from . import baselines, config as cfg, families, models, runs
from .checkpoint import atomic_write
from .errors import VaelabError

COLUMNS = (
    ("rank", "#"), ("name", "run"), ("model", "model"), ("params", "parameters"),
    ("train_seconds", "training s"), ("elbo", "test ELBO"), ("iwae", "test IWAE-k"), ("nll", "test NLL"),
    ("active_units", "active units"), ("recon_error", "recon error"), ("noisy_recon_error", "recon error, noisy x~"),
    ("gap", "amortization gap"), ("perplexity", "test perplexity"), ("npmi", "NPMI"), ("test_points", "test points"),
)
OPTIONAL = {"perplexity", "npmi"}  # document columns: shown only when some row has them
NOTES = ("Nats per example, summed over data dimensions, on the test split. NLL-k = −IWAE-k (importance "
         "sampled, k samples); baselines' NLL is exact unless the cell names another estimator. recon error = "
         "−E_q log p(x|z) (−log p(x|f(x)) for "
         "autoencoders); the noisy column reconstructs the clean x from one seeded corruption x~. training s "
         "sums the epochs' training time (validation excluded) or a baseline's fit time; timings come from "
         "whatever machine produced each run.")


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _points(c: cfg.Config, split: str, n: Any) -> str:
    """data/treatment/split/n: rows with equal strings were scored on the same inputs."""
    if c.likelihood == "bernoulli" and c.binarize:
        how = "binarized"
    elif c.likelihood != "bernoulli" and c.dequantize:
        how = "dequantized"
    else:
        how = "as stored"
    return f"{c.data} {split} ({n}, {how})"


def describe(c: cfg.Config, data_dim: int | None = None) -> str:
    """A short model description: name, sizes, estimator and whatever differs from the defaults."""
    est = models.estimator_for(c)
    dims = ((data_dim,) if data_dim else ()) + (*c.hidden, c.latent_dim)
    sizes = "-".join(map(str, dims)) if c.model != "conv-vae" else f"conv, z={c.latent_dim}"
    parts = [f"{c.model} {sizes}", c.likelihood]
    if est == "iwae":
        parts.append(f"IWAE-{c.k}")
    elif est == "sgvb-b" and not families.has_analytic_kl(c.posterior, c.prior):
        parts.append("SGVB-A (no closed-form KL)" + (f" k={c.k}" if c.k > 1 else ""))
    elif est in ("sgvb-a", "sgvb-b"):
        parts.append(est.upper() + (f" k={c.k}" if c.k > 1 else ""))
    if models.spec(c.model).estimator is None and c.posterior != "gaussian":
        parts.append(f"{c.posterior} q")
    if models.spec(c.model).estimator is None and c.prior != "normal":
        parts.append(f"{c.prior} prior")
    if c.model == "dae":
        parts.append(f"{c.noise} {c.noise_level:g}")
    return ", ".join(parts)


def run_row(run: str | Path) -> dict[str, Any]:
    """The table row of one run folder (needs eval.json)."""
    run = Path(run)
    c = runs.load_config(run)
    ev = _read_json(run / "eval.json")
    if ev is None:
        raise VaelabError(f"{run} has no readable eval.json; run `vaelab evaluate {run}` first")
    _, model = runs.load_model(run)
    metrics = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if s.strip()] \
        if (run / "metrics.jsonl").is_file() else []
    gap = _read_json(run / "amortization_gap.json") or {}
    k = ev.get("k")
    row = {
        "kind": "run", "path": str(run), "name": run.name, "model": describe(c, getattr(model, "data_dim", None)),
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": sum(float(m.get("train_seconds", 0.0)) for m in metrics) if metrics else None,
        "elbo": ev.get("elbo"), "iwae": ev.get("iwae"), "nll": ev.get("nll"),
        "nll_estimator": f"NLL-{k}" if "nll" in ev else None, "k": k,
        "active_units": ev.get("active_units"),
        "recon_error": -ev["recon"] if isinstance(ev.get("recon"), (int, float)) else None,
        "noisy_recon_error": ev.get("noisy_recon_error"), "noise": ev.get("noise"),
        "gap": gap.get("gap"), "gap_epoch": gap.get("epoch"),
        "perplexity": ev.get("perplexity"), "npmi": ev.get("npmi"),
        "test_points": _points(c, ev.get("split", "test"), ev.get("n")),
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
        "params": b.get("params"), "train_seconds": b.get("seconds"), "nll": b.get("nll"),
        "nll_estimator": b.get("nll_estimator", "exact") if "nll" in b else None,
        "perplexity": b.get("perplexity"), "npmi": b.get("npmi"), "test_points": _points(c, "test", b.get("n")),
    }


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by test NLL (lowest first; rows without one last), each given its rank."""
    def key(r: dict) -> float:
        v = r.get("nll")
        return v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf

    out = sorted(rows, key=key)
    for i, r in enumerate(out, 1):
        r["rank"] = i if key(r) < math.inf else None
    return out


def cell(row: dict[str, Any], key: str) -> str:
    """One table cell as text, naming the estimator where a number needs one."""
    v = row.get(key)
    if v is None:
        return "–"
    if key == "nll":
        return f"{v:.2f} ({row['nll_estimator']})"
    if key == "iwae":
        return f"{v:.2f} (k={row['k']})"
    if key == "noisy_recon_error":
        return f"{v:.2f} ({row['noise']})"
    if key == "gap":
        return f"{v:.3f}" + (f" (epoch {row['gap_epoch']})" if row.get("gap_epoch") else "")
    if key == "params":
        return f"{v:,}"
    if key == "train_seconds":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """COLUMNS less the optional ones no row fills."""
    return tuple((k, t) for k, t in COLUMNS if k not in OPTIONAL or any(r.get(k) is not None for r in rows))


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub Markdown, with the notes under it."""
    cols = columns(rows)
    head = "| " + " | ".join(title for _, title in cols) + " |"
    sep = "| " + " | ".join("---" for _ in cols) + " |"
    body = ["| " + " | ".join(cell(r, key).replace("|", "\\|") for key, _ in cols) + " |" for r in rows]
    notes = [NOTES]
    if any(r.get("perplexity") is not None for r in rows):
        notes.append("test perplexity = exp(−Σ bound / Σ tokens) over the test documents (the ELBO for document "
                     "VAEs, scikit-learn's variational bound for LDA); NPMI: mean coherence of the top-10 words "
                     "per topic.")
    if len({r["test_points"] for r in rows}) > 1:
        notes.append("**Not every row was scored on the same test points** (see the last column).")
    return "\n".join([head, sep, *body, "", *notes]) + "\n"


def html_table(rows: list[dict[str, Any]], highlight: str | None = None) -> str:
    """The table as HTML; the row whose path is `highlight` is bold and shaded."""
    cols = columns(rows)
    head = "<tr>" + "".join(f"<th>{escape(title)}</th>" for _, title in cols) + "</tr>"
    body = []
    for r in rows:
        style = ' style="font-weight:bold;background:#fff3c4"' if highlight and r["path"] == highlight else ""
        tds = "".join(f'<td class="num">{escape(cell(r, k))}</td>' if isinstance(r.get(k), (int, float))
                      else f"<td>{escape(cell(r, k))}</td>" for k, _ in cols)
        body.append(f"<tr{style}>{tds}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def compare(run_paths: list[str], baseline_paths: list[str] = (), out: str | Path = "comparison",
            update_runs: bool = True) -> tuple[list[dict[str, Any]], Path]:
    """Build the table, write OUT/compare.md and OUT/compare.html, and give each run its comparison.json."""
    from .report import CSS, write_report  # report imports this module's html_table

    if not run_paths and not baseline_paths:
        raise VaelabError("compare needs at least one run or --baseline folder")
    rows = rank([run_row(p) for p in run_paths] + [baseline_row(p) for p in baseline_paths])  # all read first
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaelabError(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows)
    atomic_write(out / "compare.md", md.encode())
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>vaelab comparison</title>'
            f"<style>{CSS}</style></head><body><h1>Comparison</h1>{html_table(rows)}"
            f'<p class="note">{escape(NOTES)}</p><footer>written by vaelab compare on {escape(stamp)}</footer>'
            "</body></html>\n")
    atomic_write(out / "compare.html", page.encode())
    if update_runs:
        ranked = [r for r in rows if r["rank"] is not None]
        for r in rows:
            if r["kind"] != "run":
                continue
            place = {"rank": r["rank"], "of": len(ranked), "rows": rows, "this": r["path"],
                     "written": stamp, "table": str(out / "compare.md")}
            atomic_write(Path(r["path"]) / "comparison.json", (json.dumps(place, indent=2) + "\n").encode())
            write_report(r["path"])
    return rows, out
