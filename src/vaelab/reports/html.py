"""HTML pieces shared by reports/report.py and reports/compare.py:
the style sheet, value formatting, key/value tables, figures."""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.92em}.note{color:#666;font-size:.92em}
.links a{margin-right:1em;white-space:nowrap}
.hero{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1em;align-items:start}
.hero figure{margin:.5em 0}details{margin:.5em 0 1em}summary{cursor:pointer;color:#444}
code{background:#f5f5f5;padding:.1em .3em;border-radius:3px;word-break:break-all}
footer{margin-top:3em;color:#888;font-size:.85em;border-top:1px solid #eee;padding-top:.5em}
"""
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif"}
# the reports and compare pages run no script at all: markup that got in could not run one (nor load anything)
POLICY = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
          'img-src data:; base-uri \'none\'; form-action \'none\'">')


def href(path: str) -> str:
    """A relative file path as a link target, for an href attribute (escape() it there).

    Each part is percent-encoded, so a folder named `a#b`, `50%` or `javascript:alert(1)` stays one file name
    (never a fragment, an escape or a URL scheme), and a path that does not climb gets './' in front.
    """
    url = quote(path)  # '/' stays the separator; ':', '#', '?', '%' and the rest are encoded
    return url if url.startswith("../") else "./" + url


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


def cell(value: Any) -> str:
    """A table cell: numbers right-aligned, nested dicts as sub-tables, everything escaped."""
    if isinstance(value, dict):
        return f"<td>{table(value)}</td>"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "<td>" + "".join(table(v) for v in value) + "</td>"
    cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{cls}>{escape(fmt(value))}</td>"


def table(d: dict, header: tuple[str, ...] = ()) -> str:
    """A key/value table of a dict, recursing into nested dicts."""
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(f"<tr><th>{escape(str(k))}</th>{cell(v)}</tr>" for k, v in d.items())
    return f"<table>{head}{body}</table>"


def block(data: Any) -> str:
    """Any parsed JSON value as HTML: dicts and lists of dicts as tables, other values as text."""
    if isinstance(data, dict):
        return table(data)
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        return "".join(table(v) for v in data)
    if data is None:
        return '<p class="note">(missing, empty or not valid JSON)</p>'
    return f"<p>{escape(fmt(data))}</p>"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


def figure(path: Path, caption: str) -> str:
    """A picture inlined as a data URI (the page stays one file), with its caption."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = IMAGE_TYPES.get(path.suffix, "image/png")
    return (f'<figure><img src="data:{kind};base64,{data}" alt="{escape(path.stem)}">'
            f"<figcaption><b>{escape(path.stem)}</b>: {escape(caption)}</figcaption></figure>")


def page(title: str, body: str, css: str = CSS) -> str:
    """A whole self-contained HTML document."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{POLICY}<title>{escape(title)}</title>'
            f"<style>{css}</style></head><body>{body}</body></html>\n")
