"""The comparison table (reports/compare.py's rows) as Markdown and HTML;
reports/report.py shows it in each run's report."""

from __future__ import annotations

from html import escape
from typing import Any

from ..runs.metrics import label
from ..terminal import printable
from .html import href

COLUMNS = (
    ("rank", "#"), ("name", "run"), ("model", "model"), ("params", "parameters"),
    ("train_seconds", "training s"), ("elbo", f"test {label('elbo')}"), ("iwae", f"test {label('iwae')}"),
    ("nll", "test NLL"),
    ("active_units", "active units"), ("recon_error", "recon error"), ("noisy_recon_error", "recon error, noisy x~"),
    ("gap", "amortization gap"), ("perplexity", "test perplexity"), ("npmi", "NPMI"), ("diversity", "diversity"),
    ("purity", "label purity"), ("test_points", "test points"), ("precision", "eval precision"),
)
NOTES = ("Nats per example, summed over data dimensions, on the test split. NLL-k = −IWAE-k (importance "
         "sampled, k samples); baselines' NLL is exact unless the cell names another estimator. recon error = "
         "−E_q log p(x|z) (−log p(x|f(x)) for "
         "autoencoders); the noisy column reconstructs the clean x from one seeded corruption x~. training s "
         "sums the epochs' training time (validation excluded) or a baseline's fit time; timings come from "
         "whatever machine produced each run. Evaluations run in fp32 unless the eval precision column says "
         "otherwise.")


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
    if key in ("npmi", "diversity", "purity"):  # in [-1, 1]: the third decimal tells LDA's 0.234 from 0.230
        return f"{v:.3f}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """COLUMNS less those no row fills (the run's name always stays)."""
    return tuple((k, t) for k, t in COLUMNS if k == "name" or any(r.get(k) is not None for r in rows))


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub Markdown, with the notes under it."""
    cols = columns(rows)
    head = "| " + " | ".join(title for _, title in cols) + " |"
    sep = "| " + " | ".join("---" for _ in cols) + " |"
    # a cell is data (a run's folder name): its control characters, a newline too, would break the row
    body = ["| " + " | ".join(printable(cell(r, key)).replace("|", "\\|") for key, _ in cols) + " |" for r in rows]
    notes = [NOTES]
    if any(r.get("perplexity") is not None for r in rows):
        notes.append("test perplexity = exp(−Σ bound / Σ tokens) over the test documents, the bound being the "
                     "per-document ELBO for document VAEs and for LDA (scikit-learn's bound less its topic-word "
                     "term; an older baseline.json without it shows scikit-learn's own, which includes that term); "
                     "NPMI: mean coherence of the top-10 words per topic (NVDM: both ends of R's columns), document "
                     "co-occurrence in the training split unless a run's npmi_window or npmi_reference says otherwise; "
                     "diversity: unique fraction of the topics' top-25 words; label purity: majority label's "
                     "share of each topic's min(30, N / topics) top test documents.")
    if len({r["test_points"] for r in rows}) > 1:
        notes.append("**Not every row was scored on the same test points** (see the last column).")
    return "\n".join([head, sep, *body, "", *notes]) + "\n"


def html_table(rows: list[dict[str, Any]], highlight: str | None = None, links: dict[str, str] | None = None) -> str:
    """The table as HTML; the row whose path is `highlight` is bold and shaded; links: path -> href of its name."""
    cols = columns(rows)
    head = "<tr>" + "".join(f"<th>{escape(title)}</th>" for _, title in cols) + "</tr>"
    body = []
    for r in rows:
        style = ' style="font-weight:bold;background:#fff3c4"' if highlight and r["path"] == highlight else ""
        tds = []
        for k, _ in cols:
            text = escape(cell(r, k))
            if k == "name":  # linked to the row's report (or baseline.json)
                link = (links or {}).get(r["path"])
                tds.append(f'<td class="name"><a href="{escape(href(link))}">{text}</a></td>' if link
                           else f'<td class="name">{text}</td>')
            else:
                tds.append(f'<td class="num">{text}</td>' if isinstance(r.get(k), (int, float)) else f"<td>{text}</td>")
        body.append(f"<tr{style}>{''.join(tds)}</tr>")
    return f"<table class=\"compare\">{head}{''.join(body)}</table>"
