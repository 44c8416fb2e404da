"""The report, the comparison page and the explorer on a phone (390 x 844) and a laptop (1280 x 900).

Headless Chromium (Debian's package) driven by Playwright; skips where either is missing. Each page kind, an image
run's and a document run's, is opened at both sizes: the page itself never scrolls sideways (wide tables scroll in
their own box), text stays readable on the phone, the headline NLL is on the first screen, and every link and
picture leads to a file of the run.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from browser import CHROMIUM, launched, sync_api  # noqa: F401 (skips without them)

import vaelab
from vaelab.baselines import mixtures as B
from vaelab.config.schema import Config
from vaelab.reports import compare

PHONE, LAPTOP = (390, 844), (1280, 900)
QUIET = dict(device="cpu", log=lambda s: None, eval_k=20)
# the smallest font of any element that shows text of its own, and where it is
SMALLEST_FONT = """() => { let small = Infinity, where = '';
  for (const e of document.body.querySelectorAll('*')) {
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    if (!e.getClientRects().length) continue;  // not drawn (folded away in a closed <details>)
    const f = parseFloat(getComputedStyle(e).fontSize);
    if (f < small) { small = f; where = e.tagName + ' ' + e.textContent.slice(0, 40); } }
  return [small, where]; }"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """An image run (2-D latent) and a document run, each with its report and explorer, a baseline, and their
    comparison with --update-reports (so the reports show their rows and the baseline the image run beats or trails)."""
    from corpora import two_topic_lines, write_tsv

    root = tmp_path_factory.mktemp("pages")
    image = vaelab.train(out=root / "image run", data="digits", hidden=(32,), latent_dim=2, epochs=2, batch_size=64,
                         **QUIET)
    corpus = write_tsv(root / "corpus", two_topic_lines(60))
    docs = vaelab.train(out=root / "doc run", data=f"corpus:{corpus}", model="nvdm", likelihood="multinomial",
                        hidden=(16,), latent_dim=3, epochs=2, batch_size=8, **QUIET)
    B.fit("single", Config(data="digits"), B.Options(), root / "single")
    compare.compare([str(image), str(docs)], [str(root / "single")], out=root / "cmp", update_runs=True)
    return {"image report": image / "report.html", "document report": docs / "report.html",
            "comparison": root / "cmp" / "compare.html", "image explorer": image / "explorer.html",
            "document explorer": docs / "explorer.html"}


@pytest.fixture(scope="module")
def browser():
    yield from launched()


def _open(browser, path: Path, size: tuple[int, int]):
    """The page at path in a fresh tab of that size (the phone a mobile one: it lays a page out 980 px wide and
    shrinks it, unless the page's viewport meta says otherwise); its script errors and requests are recorded (and
    any request but for the page itself aborted)."""
    phone = size == PHONE
    pg = browser.new_page(viewport={"width": size[0], "height": size[1]}, is_mobile=phone, has_touch=phone)
    pg.errors, pg.requests = [], []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.route("**/*", lambda route: route.abort() if route.request.url != path.as_uri() else route.continue_())
    pg.goto(path.as_uri())
    return pg


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("kind", ["image report", "document report", "comparison", "image explorer",
                                  "document explorer"])
def test_no_page_scrolls_sideways_and_text_is_readable(browser, pages, kind, size):
    pg = _open(browser, pages[kind], size)
    width, inner = pg.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner == size[0]  # wide tables scroll inside their own box, never the page
    scale = pg.evaluate("visualViewport.scale")  # what a phone shrinks the layout by to show it whole
    body = pg.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") * scale
    smallest, where = pg.evaluate(SMALLEST_FONT)
    assert body >= 14 and smallest * scale >= 12, where  # a 980-px layout shrunk onto a phone reads as ~6 px
    assert pg.errors == [] and pg.requests == [pages[kind].as_uri()]
    pg.close()


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("kind", ["image report", "document report"])
def test_the_report_opens_with_its_headline_numbers_on_the_first_screen(browser, pages, kind, size):
    import json

    pg = _open(browser, pages[kind], size)
    box = pg.locator("#headline-nll").bounding_box()
    assert box is not None and box["y"] + box["height"] <= size[1]  # visible without scrolling
    ev = json.loads((pages[kind].parent / "eval.json").read_text())
    strip = pg.inner_text(".headline")
    assert f"{ev['nll']:.4f}" in strip and ev["estimators"]["nll"] in strip  # the number, naming its estimator
    if kind == "image report":  # the model in words, the baseline it beats, the training time
        assert "VAE, 2-D latent" in strip and "Bernoulli likelihood" in strip and "64-dim data" in strip
        single = json.loads((pages["comparison"].parent.parent / "single" / "baseline.json").read_text())
        diff = single["nll"] - ev["nll"]  # two epochs on digits may well trail one Bernoulli per pixel: said so
        assert f"{'beats' if diff > 0 else 'trails'} by {abs(diff):.4f}" in strip and "training time" in strip
    else:
        assert "NVDM" in strip and "perplexity" in strip
    pg.close()


def _links(pg) -> list[str]:
    return pg.evaluate("[...document.querySelectorAll('a[href]')].map((a) => a.href)")


@pytest.mark.parametrize("kind", ["image report", "document report", "comparison"])
def test_every_link_leads_to_a_file_and_every_figure_opens_full_size(browser, pages, kind):
    pg = _open(browser, pages[kind], LAPTOP)
    for url in _links(pg):
        parsed = urlparse(url)
        assert parsed.scheme == "file", url
        if parsed.fragment and parsed.path == urlparse(pg.url).path:  # a place on the page itself
            assert pg.locator(f"#{parsed.fragment}").count() == 1
            continue
        assert Path(unquote(parsed.path)).exists(), url
    figures = pg.evaluate("""[...document.querySelectorAll('figure')].map((f) => {
        const a = f.querySelector('a'), img = f.querySelector('img');
        return [a && a.contains(img) ? a.href : null, img.src]; })""")
    assert figures
    for link, src in figures:  # the picture's link is the PNG it shows, at full size
        assert link is not None
        assert Path(unquote(urlparse(link).path)).read_bytes() == base64.b64decode(src.split(",", 1)[1])
    pg.close()


def test_the_report_links_every_file_of_the_run(browser, pages):
    run = pages["image report"].parent
    pg = _open(browser, pages["image report"], LAPTOP)
    listed = {Path(unquote(urlparse(u).path)) for u in
              pg.evaluate("[...document.querySelectorAll('#files ~ ul.files a')].map((a) => a.href)")}
    on_disk = {p for p in run.rglob("*") if p.is_file() and p.name != "report.html"}
    assert {run / "plots" / "manifold.png", run / "model.safetensors", run / "metrics.jsonl"} <= on_disk
    assert on_disk <= listed  # every file, the comparison page besides
    pg.close()


def test_the_manifold_is_drawn_with_enough_pixels_per_tile(browser, pages):
    pg = _open(browser, pages["image report"], LAPTOP)
    width = pg.evaluate("document.querySelector('img[alt^=\"manifold\"]').getBoundingClientRect().width")
    assert width >= 21 * 28  # the default 21 x 21 grid: at least ~28 px a tile (the axes take the rest)
    pg.close()


def test_the_comparison_page_shows_each_run_side_by_side_with_every_note(browser, pages):
    md = (pages["comparison"].parent / "compare.md").read_text()
    pg = _open(browser, pages["comparison"], LAPTOP)
    text = pg.inner_text("body")
    notes = [line.replace("**", "") for line in md.split("\n\n", 1)[1].splitlines() if line]
    assert any("Not every row was scored on the same test points" in n for n in notes)
    assert any(n.startswith("test perplexity = exp(") for n in notes)
    for note in notes:
        assert note in text, note
    best = pg.locator("tr.best-row td.name")  # the row ranked first: marked in both tables
    assert best.count() == 1 and best.inner_text().endswith("best")
    first = md.splitlines()[2]
    assert first.startswith("| 1 | ") and f"| {best.inner_text().removesuffix('best').strip()} (best) |" in first
    sections = pg.locator(".gallery section")
    runs = [Path(p).name for p in (pages["image report"].parent, pages["document report"].parent)]
    order = sorted(runs, key=lambda n: md.index(f"| {n}"))  # the table's order
    assert sections.count() == 2  # a row of pictures per run; the baseline has none
    for i, name in enumerate(order):
        assert sections.nth(i).locator("h3").inner_text().endswith(name)
        wanted = ("samples", "recon", "curves") if name == "image run" else ("topics", "latent", "curves")
        alts = sections.nth(i).locator("img").evaluate_all("(imgs) => imgs.map((im) => im.alt.split(':')[0])")
        assert tuple(alts) == wanted
        tops = sections.nth(i).locator("img").evaluate_all("(imgs) => imgs.map((im) => im.getBoundingClientRect().top)")
        assert max(tops) - min(tops) < 1  # side by side on a laptop
    pg.close()
