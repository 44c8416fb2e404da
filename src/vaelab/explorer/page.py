"""`vaelab explore`: RUN/explorer.html, one self-contained page to move through a trained model's latent space.

The page (templates/explorer.html + explorer.js) needs no server and makes no request (its
Content-Security-Policy forbids any): everything it shows is in one JSON payload built here.
    plane    the latent itself (2-D) or the plane of the test codes' two principal directions (explorer_decoder.plane)
    points   test examples (a seeded subset): plane coordinates, full codes, labels, and the images or top words
    decoder  "page": MLP weights the page runs itself (exact to float32), or "grid": means decoded here on
             an n x n grid over the plane, which the page interpolates (images) or reads at the nearest node (words)
    classes  a conditional model's (Sohn et al. 2015) class names, K of them: the page's class selector picks the y
             its decoder reads with z, [z, onehot(y)] (a grid holds K grids, one per class); each test example's
             code is E_q[z | x, y] and its reconstruction is decoded with its own label
    traversal  images decoded in the page by a model with a prior: each dimension's values at the prior's
             quantiles (reports.views.grid_quantiles, as `plot --kind traversal`), which the page sweeps one
             dimension at a time with the others at a chosen test example's posterior mean
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .. import models
from ..data import is_corpus, rows
from ..data.labels import label_names
from ..errors import VaelabError, need_count
from ..runs import kept_data, loading
from ..runs.folder import RunFolder
from ..runs.json_text import dumps
from ..runs.resolve import device as resolve_device
from . import decoder as xd

POINTS = 2000  # test examples in the scatter (all of them when there are fewer)
GRID = 41  # nodes per side of a pre-decoded image grid (documents: GRID_WORDS)
GRID_WORDS = 21
GRID_CLASSES = 21  # nodes per side of each class's grid (a conditional model's: K grids)
TOP_WORDS = 12  # words per list in the page
DOC_WORDS = 8  # a document's own most frequent words (its "title words")
PROBES = 64  # codes on which the page's decoder must match model.decode
TRAVERSAL_STEPS = 9  # quantiles per swept dimension (plot --kind traversal's default)
TRAVERSAL_DIMS = 16  # at most this many dimensions swept: those whose posterior means vary most
SEED = 0
ACT_NAMES = {"relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid", "leaky_relu": "leaky ReLU", "softplus": "softplus"}


def _shape(data) -> tuple[int, int, int] | None:
    """(C, H, W) to draw examples as pictures (C 1 or 3), None for documents; VaelabError otherwise."""
    if is_corpus(data):
        return None
    from ..reports.views import image_shape  # the report's rule for what is a picture

    s = tuple(data.shape)
    if len(s) == 3 and s[0] in (1, 3):
        return s  # type: ignore[return-value]
    hw = image_shape(s)
    if hw is None:
        raise VaelabError(f"the explorer draws images or documents; examples of shape {s} are neither")
    return (1, *hw)


@torch.no_grad()
def _codes(model, x: torch.Tensor) -> np.ndarray:
    """Posterior means (or AE codes) E_q[z], (N, Dz), through the contract's embed."""
    return torch.cat([model.embed(x[i:i + 2048]) for i in range(0, len(x), 2048)]).double().cpu().numpy()


def _data_name(spec: str) -> str:
    """fashion-mnist as is; corpus:../shared/data/bbc_news as bbc_news."""
    kind, _, path = spec.partition(":")
    return Path(path.rstrip("/")).name or spec if kind in ("corpus", "npz", "folder", "npy") else spec


def _extent(ab: np.ndarray) -> list[float]:
    """x0, x1, y0, y1 around the plane coordinates, 10% padded (a flat axis gets +-1)."""
    lo, hi = ab.min(0), ab.max(0)
    pad = np.where(hi > lo, 0.1 * (hi - lo), 1.0)
    return [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]


def _top(p: np.ndarray, ref: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Word ids, (N, k) each: the most probable, and the most raised against ref (largest log p - log p_ref)."""
    lift = np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(ref, 1e-300))
    return np.argsort(-p, 1)[:, :k], np.argsort(-lift, 1)[:, :k]


def _describe(route: tuple[list[xd.Layer], str] | None, model, kind: str, n: int, classes: int = 0) -> str:
    """One sentence for the page: how the decoded pictures or words are made (a second for a conditional model)."""
    given = (f" A conditional model (Sohn et al. 2015): the decoder reads [z, onehot(y)], y the class chosen beside "
             f"the plane (one of {classes}); each test example is encoded and reconstructed with its own label."
             if classes else "")
    if route is None:
        name = type(getattr(model, "decoder", model)).__name__
        how = "bilinearly interpolated between nodes" if kind == "image" else "read at the nearest node"
        per = " for each class" if classes else ""
        return (f"The decoder ({name}) cannot run in this page: it was decoded in advance on a {n} x {n} grid over "
                f"the plane{per}, {how}; the sliders and off-plane codes are not decoded.{given}")
    layers, output = route
    acts = sorted({ACT_NAMES[L.act] for L in layers if L.act != "identity"})
    return (f"The decoder runs in this page from its embedded float32 weights: {len(layers)} linear layer"
            f"{'s' if len(layers) > 1 else ''}{' with ' + ', '.join(acts) if acts else ''}, then {output} "
            f"(the mean of p(x|{'z, y' if classes else 'z'}){', word probabilities' if output == 'softmax' else ''})."
            f"{given}")


def _traversal(model, codes: np.ndarray) -> dict | None:
    """The values each latent dimension is swept over, (steps, Dz) at grid_probabilities(steps), what they are,
    and the dimensions swept (all, or the TRAVERSAL_DIMS whose posterior means vary most, in dimension order);
    None for a model without a prior (an autoencoder)."""
    from ..models.contract import is_latent_variable
    from ..reports.views import grid_probabilities, grid_quantiles  # the plot's rule for the values

    if not is_latent_variable(model):
        return None
    values, what = grid_quantiles(model, TRAVERSAL_STEPS, lambda: codes)  # (steps, Dz)
    d = values.shape[1]
    dims = list(range(d)) if d <= TRAVERSAL_DIMS else sorted(np.argsort(-codes.std(0))[:TRAVERSAL_DIMS].tolist())
    return {"what": what, "probabilities": grid_probabilities(TRAVERSAL_STEPS).tolist(),
            "values": xd.b64(values, "<f4"), "dims": [int(j) for j in dims]}


def payload(run: str | Path, *, points: int = POINTS, decoder: str = "auto", device: str = "cpu",
            data=None) -> dict:
    """Everything the page shows, as JSON-ready values (arrays as base64)."""
    if decoder not in ("auto", "grid"):
        raise VaelabError(f"decoder must be auto or grid, not {decoder!r}")
    if points < 2:
        raise VaelabError(f"points must be at least 2, got {points}")
    c = loading.load_config(run)
    data = data if data is not None else kept_data.run_data(run, c)
    shape = _shape(data)
    kind = "image" if shape is not None else "document"
    _, model = loading.load_model(run, data.shape, resolve_device(device))
    if not hasattr(model, "embed"):  # an exact-likelihood model (pixelcnn) has no latent space to explore
        raise VaelabError(f"the explorer needs a model with a latent code; {c.model} has none")
    # grey images or counts, (N, D); a conditional model's rows carry the one-hot label after the image, (N, D + K)
    x = rows(data.test, None, data.scale).to(next(model.parameters()).device)
    if len(x) < 2:
        raise VaelabError(f"the explorer needs 2 test examples, found {len(x)}")
    k = int(getattr(model, "classes", 0)) if getattr(model, "label_conditional", False) else 0
    hot = x[:, x.shape[1] - k:].round().cpu().numpy() if k else None  # (N, K) one-hot labels, or None
    codes = _codes(model, x)  # (N, Dz): E_q[z | x] (E_q[z | x, y] for a conditional model)
    pl = xd.plane(codes)
    ab = pl.project(codes)
    pick = np.sort(np.random.default_rng(SEED).permutation(len(x))[:points])
    y = data.y_test.numpy()[pick] if data.y_test is not None else None
    names = label_names(data)
    docs = kind == "document"
    probes = codes[np.random.default_rng(SEED).integers(0, len(codes), PROBES)] + \
        np.random.default_rng(SEED + 1).normal(0, 1, (PROBES, codes.shape[1]))
    probe_y = np.eye(k)[np.random.default_rng(SEED + 2).integers(0, k, PROBES)] if k else None  # (PROBES, K)
    route = None if decoder == "grid" else xd.page_decoder(model, probes, docs, probe_y)
    extent = _extent(ab)
    xs = x[torch.as_tensor(pick, device=x.device)].cpu().numpy()[:, :x.shape[1] - k]  # the images, labels cut
    grid = GRID_CLASSES if k else GRID
    out: dict = {
        "title": f"{c.model} on {_data_name(c.data)}", "run": str(Path(run).resolve().name), "kind": kind,
        "latent_dim": int(codes.shape[1]), "likelihood": models.likelihood_for(c),
        "plane": {"what": pl.what, "origin": pl.origin.tolist(), "axes": pl.axes.tolist(),
                  "others": pl.others.tolist(), "sds": pl.sds.tolist()},
        "extent": extent, "n": int(len(pick)), "n_test": int(len(x)),
        "xy": xd.b64(ab[pick], "<f4"), "codes": xd.b64(codes[pick], "<f4"), "index": pick.tolist(),
        "labels": None if y is None else xd.b64(y, "<i4"),
        "label_names": list(names) if names is not None else None,
        "note": _describe(route, model, kind, grid if kind == "image" else GRID_WORDS, k),
        "classes": [str(names[i]) if names is not None and i < len(names) else str(i) for i in range(k)] or None,
    }
    if route is not None:
        out["decoder"] = {"mode": "page", "output": route[1], "layers": xd.export_layers(route[0])}
    if kind == "image":
        out["image"] = {"channels": shape[0], "height": shape[1], "width": shape[2]}
        out["traversal"] = _traversal(model, codes) if route is not None else None  # decoded in the page only
        out["examples"] = xd.b64(xd.to_levels(xs), "u1")
        if route is None:
            nodes = pl.code(xd.grid_nodes(extent, grid))  # (n * n, Dz); a conditional model: n * n per class
            levels = [xd.means(model, nodes, False, None if k == 0 else np.eye(k)[[j] * len(nodes)])
                      for j in range(max(k, 1))]  # [(n * n, D)] * max(K, 1)
            out["decoder"] = {"mode": "grid", "n": grid, "nodes": xd.b64(xd.to_levels(np.concatenate(levels)), "u1")}
            out["recon"] = xd.b64(xd.to_levels(xd.means(model, codes[pick], False, None if k == 0 else hot[pick])),
                                  "u1")
    else:
        out["vocabulary"] = list(data.vocabulary)
        counts = xs  # (n, |V|)
        top = np.argsort(-counts, 1, kind="stable")[:, :DOC_WORDS]
        top_counts = np.take_along_axis(counts, top, 1)
        out["doc_words"] = xd.b64(np.where(top_counts > 0, top, -1), "<i4")
        out["doc_counts"] = xd.b64(np.round(top_counts), "<i4")
        if route is None:
            ref = xd.means(model, pl.origin[None], True)
            nodes = xd.grid_nodes(extent, GRID_WORDS)
            p = xd.means(model, pl.code(nodes), True)
            likely, raised = _top(p, ref, TOP_WORDS)
            out["decoder"] = {"mode": "grid", "n": GRID_WORDS, "likely": xd.b64(likely, "<i4"),
                              "raised": xd.b64(raised, "<i4"),
                              "likely_p": xd.b64(np.take_along_axis(p, likely, 1), "<f4")}
            pr = xd.means(model, codes[pick], True)
            likely, raised = _top(pr, ref, TOP_WORDS)
            out["recon_likely"], out["recon_raised"] = xd.b64(likely, "<i4"), xd.b64(raised, "<i4")
    return out


# JSON inside <script>: "<" would let a word such as "</script>" or "<!--<script>" end the element or switch the
# HTML parser into a state that swallows the rest of the page; ">" and "&" for the same parser's sake; U+2028/9
# end a line in older JavaScript. Each stays the same JSON string, written as a \u escape.
SCRIPT_SAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}
# what the page may do: run its one script and apply its one style sheet (each named by its hash, so an injected
# <script>, an inline event handler or a javascript: URL never runs), show data: images; nothing is fetched
CSP = ("default-src 'none'; script-src '{script}'; style-src '{style}'; img-src data:; base-uri 'none'; "
       "form-action 'none'")


def _sha256(text: str) -> str:
    """A CSP hash source: sha256-BASE64 of the element's exact text."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def page(data: dict) -> str:
    """The HTML page: the template with its CSP, its script and the payload inlined."""
    files = resources.files("vaelab.explorer") / "templates"
    html = (files / "explorer.html").read_text(encoding="utf-8")
    js = (files / "explorer.js").read_text(encoding="utf-8")
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    payload = dumps(data, "the explorer's payload", separators=(",", ":")).translate(SCRIPT_SAFE)
    values = {"TITLE": escape(data["title"]), "CSP": CSP.format(script=_sha256(js), style=_sha256(style)),
              "PAYLOAD": payload, "SCRIPT": js}
    # one pass: a value that happens to contain "{{SCRIPT}}" (a vocabulary word) is never substituted again
    return re.sub(r"\{\{(TITLE|CSP|PAYLOAD|SCRIPT)\}\}", lambda m: values[m.group(1)], html)


def write_explorer(run: str | Path, *, points: int = POINTS, decoder: str = "auto", device: str = "cpu",
                   data=None) -> Path:
    """Write RUN/explorer.html and return its path."""
    need_count("points", points)
    folder = RunFolder(run)
    if not folder.is_run():
        raise VaelabError(f"{run} is not a vaelab run folder (no config.toml); no explorer written")
    return folder.write_explorer(page(payload(run, points=points, decoder=decoder, device=device, data=data)))
