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
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:16px;max-width:1000px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45;overflow-wrap:anywhere}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}table{border-collapse:collapse;margin:0}
.scroll{overflow-x:auto;max-width:100%;margin:.5em 0 1em}.scroll .scroll{margin:0}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top;overflow-wrap:normal}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee;display:block}
figure a{display:block}
figcaption{color:#555;font-size:.92em}.note{color:#666;font-size:.92em}
.links a{white-space:nowrap}
.headline{display:flex;flex-wrap:wrap;gap:.4em 1.6em;background:#f4f8fc;border:1px solid #d6e4f0;border-radius:6px;
padding:.7em 1em;margin:.6em 0 1em}.headline div{min-width:12em}.headline .big{font-size:1.5em;font-weight:600}
.headline .what{flex-basis:100%;font-size:1.05em}.headline small{color:#555;font-size:.88em;display:block}
.hero{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1em;align-items:start}
.hero figure{margin:.5em 0}.wide{margin:1em 0}details{margin:.5em 0 1em}summary{cursor:pointer;color:#444}
code{background:#f5f5f5;padding:.1em .3em;border-radius:3px;word-break:break-all}
ul.files{columns:2 18em;padding-left:1.2em}ul.files li{break-inside:avoid}ul.files span{color:#888;font-size:.88em}
footer{margin-top:3em;color:#888;font-size:.88em;border-top:1px solid #eee;padding-top:.5em}
@media (max-width:700px){body{margin:1em auto;padding:0 .6em}.hero{grid-template-columns:1fr}
h1{font-size:1.35em}ul.files{columns:1}}
"""
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif"}
# the reports and compare pages run no script at all: markup that got in could not run one (nor load anything)
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
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
    return scroll(f"<table>{head}{body}</table>")


def scroll(table_html: str) -> str:
    """A table in its own horizontally scrolling box: a wide table scrolls there, never the page."""
    return f'<div class="scroll">{table_html}</div>'


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


def figure(path: Path, caption: str, link: str | None = None, cls: str = "", title: str | None = None) -> str:
    """A picture inlined as a data URI (the page stays one file), with its caption; link: the relative path of the
    file itself, which a click on the picture opens full size."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = IMAGE_TYPES.get(path.suffix, "image/png")
    img = f'<img src="data:{kind};base64,{data}" alt="{escape(path.stem)}: {escape(caption)}">'
    if link is not None:
        img = f'<a href="{escape(href(link))}" title="open full size">{img}</a>'
    name = escape(path.stem if title is None else title)
    attr = f' class="{escape(cls)}"' if cls else ""
    return (f"<figure{attr}>{img}"
            f"<figcaption><b>{name}</b>: {escape(caption)}</figcaption></figure>")


def page(title: str, body: str, css: str = CSS) -> str:
    """A whole self-contained HTML document."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{VIEWPORT}{POLICY}'
            f"<title>{escape(title)}</title>"
            f"<style>{css}</style></head><body>{body}</body></html>\n")
