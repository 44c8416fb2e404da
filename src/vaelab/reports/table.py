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
    ("purity", "label purity"), ("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"), ("sap", "SAP"),
    ("factorvae_score", "FactorVAE score"), ("test_points", "test points"), ("precision", "eval precision"),
)
FACTOR_COLUMNS = ("mig", "dci_disentanglement", "sap", "factorvae_score")  # in [0, 1], like NPMI: 3 decimals
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
    if key in ("npmi", "diversity", "purity") or key in FACTOR_COLUMNS:  # in [-1, 1]: LDA's 0.234 is not 0.230
        return f"{v:.3f}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """COLUMNS less those no row fills (the run's name always stays)."""
    return tuple((k, t) for k, t in COLUMNS if k == "name" or any(r.get(k) is not None for r in rows))


# the columns with a better end: the best value of each is marked (bold) in both tables
LOWER_IS_BETTER = ("nll", "recon_error", "noisy_recon_error", "gap", "perplexity")
HIGHER_IS_BETTER = ("elbo", "iwae", "npmi", "diversity", "purity")
PERPLEXITY_NOTE = (
    "test perplexity = exp(−Σ bound / Σ tokens) over the test documents, the bound being the per-document ELBO for "
    "document VAEs and for LDA (scikit-learn's bound less its topic-word term; an older baseline.json without it "
    "shows scikit-learn's own, which includes that term); NPMI: mean coherence of the top-10 words per topic (NVDM: "
    "both ends of R's columns), document co-occurrence in the training split unless a run's npmi_window or "
    "npmi_reference says otherwise; diversity: unique fraction of the topics' top-25 words; label purity: majority "
    "label's share of each topic's min(30, N / topics) top test documents.")
MIXED_POINTS = "Not every row was scored on the same test points"
BEST_NOTE = ("Bold: the best value of each column among the rows scored on the same test points as the best row "
             "(lowest test NLL, perplexity, recon error and amortization gap; highest ELBO, IWAE, NPMI, diversity and "
             "label purity); the best row, first by test NLL, is marked best.")


def best_cells(rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """(row index, column) of the best value of each column with a better end, among the rows scored on the same
    test points as the first row (numbers on different test points do not rank); ties all marked; only where at
    least two rows have the column."""
    if not rows:
        return set()
    same = [i for i, r in enumerate(rows) if r.get("test_points") == rows[0].get("test_points")]
    out = set()
    for key in LOWER_IS_BETTER + HIGHER_IS_BETTER:
        have = [(i, rows[i][key]) for i in same if isinstance(rows[i].get(key), (int, float))]
        if len(have) < 2:
            continue
        best = (min if key in LOWER_IS_BETTER else max)(v for _, v in have)
        out |= {(i, key) for i, v in have if v == best}
    return out


def best_row(rows: list[dict[str, Any]]) -> int | None:
    """The index of the row ranked first (lowest test NLL) when more than one row is ranked."""
    ranked = [i for i, r in enumerate(rows) if r.get("rank") is not None]
    return min(ranked, key=lambda i: rows[i]["rank"]) if len(ranked) > 1 else None


FACTORS_NOTE = ("MIG, DCI disentanglement, SAP and the FactorVAE score (`evaluate --disentanglement`): the "
                "posterior means of the train split against the data's ground-truth factors (DCI and the FactorVAE "
                "score fitted there, scored on the test split); DCI's importances come from scikit-learn's "
                "gradient-boosted trees. Each lies in [0, 1], higher is more disentangled.")


def notes(rows: list[dict[str, Any]]) -> list[str]:
    """The notes under the table, in both the Markdown and the HTML (plain text)."""
    out = [NOTES]
    if best_cells(rows) or best_row(rows) is not None:
        out.append(BEST_NOTE)
    if any(r.get("perplexity") is not None for r in rows):
        out.append(PERPLEXITY_NOTE)
    if any(r.get("mig") is not None for r in rows):
        out.append(FACTORS_NOTE)
    if len({r.get("test_points") for r in rows}) > 1:
        out.append(f"{MIXED_POINTS} (see the last column).")
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub Markdown, with the notes under it; the best value of each column in bold, the best row
    marked."""
    cols = columns(rows)
    head = "| " + " | ".join(title for _, title in cols) + " |"
    sep = "| " + " | ".join("---" for _ in cols) + " |"
    bold, first = best_cells(rows), best_row(rows)

    def md(i: int, r: dict, key: str) -> str:
        # a cell is data (a run's folder name): its control characters, a newline too, would break the row
        text = printable(cell(r, key)).replace("|", "\\|")
        if key == "name" and i == first:
            text += " (best)"
        return f"**{text}**" if (i, key) in bold else text

    body = ["| " + " | ".join(md(i, r, key) for key, _ in cols) + " |" for i, r in enumerate(rows)]
    texts = [f"**{n}**" if n.startswith(MIXED_POINTS) else n for n in notes(rows)]
    return "\n".join([head, sep, *body, "", *texts]) + "\n"


def html_table(rows: list[dict[str, Any]], highlight: str | None = None, links: dict[str, str] | None = None) -> str:
    """The table as HTML in its own scrolling box; the row whose path is `highlight` is bold and shaded; links:
    path -> href of its name; the best value of each column bold, the best row marked."""
    cols = columns(rows)
    head = "<tr>" + "".join(f"<th>{escape(title)}</th>" for _, title in cols) + "</tr>"
    bold, first = best_cells(rows), best_row(rows)
    body = []
    for i, r in enumerate(rows):
        style = ' style="font-weight:bold;background:#fff3c4"' if highlight and r["path"] == highlight else ""
        mark = ' class="best-row"' if i == first else ""
        tds = []
        for k, _ in cols:
            text = escape(cell(r, k))
            best = " best" if (i, k) in bold else ""
            if k == "name":  # linked to the row's report (or baseline.json)
                link = (links or {}).get(r["path"])
                badge = ' <span class="badge">best</span>' if i == first else ""
                tds.append(f'<td class="name"><a href="{escape(href(link))}">{text}</a>{badge}</td>' if link
                           else f'<td class="name">{text}{badge}</td>')
            elif isinstance(r.get(k), (int, float)):
                tds.append(f'<td class="num{best}">{text}</td>')
            else:
                tds.append(f'<td class="{best.strip()}">{text}</td>' if best else f"<td>{text}</td>")
        body.append(f"<tr{style}{mark}>{''.join(tds)}</tr>")
    return f"<div class=\"scroll\"><table class=\"compare\">{head}{''.join(body)}</table></div>"
