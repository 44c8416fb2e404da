"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright.

The drawn pixels are compared with the PyTorch decoder at the latent point the pointer is on;
skips where Playwright or a Chromium executable is missing (.ci/run installs both when it can).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from browser import CHROMIUM, launched, sync_api  # noqa: F401 (skips without them)

import vaelab
from vaelab.explorer import decoder as xd
from vaelab.explorer import page as explorer
from vaelab.runs import inputs, loading

SMALL = dict(data="digits", hidden=(32,), latent_dim=2, batch_size=64, lr=3e-3, device="cpu", epochs=3,
             log=lambda s: None, finish=False)
STATS: dict[str, float] = {"max_pixel_error": 0.0, "max_redraw_ms": 0.0}


@pytest.fixture(scope="module")
def browser():
    yield from launched()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = vaelab.train(out=tmp_path_factory.mktemp("x") / "run", **SMALL)
    explorer.write_explorer(run)
    return run


@pytest.fixture()
def page(browser, run):
    """The explorer page, every request it makes recorded (and any but the page itself aborted)."""
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests, errors = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
    pg.goto((run / "explorer.html").as_uri())
    yield pg
    assert errors == []
    assert requests == [(run / "explorer.html").as_uri()]  # the page itself and nothing else
    pg.close()


def _pixels(pg, selector: str) -> np.ndarray:
    """The R channel of a canvas at its own resolution (grey images: R = G = B), (H, W)."""
    data = pg.evaluate(f"""(() => {{ const c = document.querySelector({selector!r});
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }})()""")
    rgba = np.array(data, dtype=np.int64).reshape(-1, 4)
    assert (rgba[:, 0] == rgba[:, 1]).all() and (rgba[:, 3] == 255).all()
    return rgba[:, 0]


def _torch_levels(run, z) -> np.ndarray:
    with torch.no_grad():
        mean = vaelab.load(run).decode(torch.tensor(np.atleast_2d(z), dtype=torch.float32)).mean.numpy()
    return np.round(255 * np.clip(mean, 0, 1))  # (N, 64)


def test_moving_the_pointer_draws_the_torch_decoder_output(page, run):
    x0, x1, y0, y1 = page.evaluate("explorer.payload.extent")
    span = max((x1 - x0), (y1 - y0)) / 600  # latent units per canvas pixel
    for fa, fb in ((0.5, 0.5), (0.13, 0.81), (0.77, 0.21), (0.02, 0.98), (0.64, 0.47)):
        a, b = x0 + fa * (x1 - x0), y0 + fb * (y1 - y0)
        page.mouse.move(*page.evaluate(f"explorer.toClient({a}, {b})"))
        state = page.evaluate("explorer.state")
        assert abs(state["a"] - a) <= span and abs(state["b"] - b) <= span  # the pointer is where we asked
        assert np.allclose(state["z"], [state["a"], state["b"]])  # a 2-D latent is its own plane
        err = np.abs(_pixels(page, "#out") - _torch_levels(run, state["z"])[0]).max()
        assert err <= 1  # within 1/255 of PyTorch's decoder mean
        STATS["max_pixel_error"] = max(STATS["max_pixel_error"], err / 255)
        STATS["max_redraw_ms"] = max(STATS["max_redraw_ms"], state["ms"])
    print(f"\nexplorer: max pixel error {STATS['max_pixel_error']:.5f}, max redraw {STATS['max_redraw_ms']:.2f} ms")


def _isolated(xy: np.ndarray, px: float, k: int = 2) -> list[int]:
    """Points with no other point within 10 canvas pixels (so the pointer on one hovers that one)."""
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) / px
    np.fill_diagonal(d, np.inf)
    return list(np.flatnonzero(d.min(1) > 10)[:k])


def test_hovering_a_point_shows_that_example_and_its_label(page, run):
    p = page.evaluate("explorer.payload")
    xy = xd.unb64(p["xy"], "<f4").reshape(-1, 2)
    x0, x1, y0, y1 = p["extent"]
    i = _isolated(xy / [(x1 - x0), (y1 - y0)], 1 / 600)[0]
    page.mouse.move(*page.evaluate(f"explorer.pointClient({i})"))
    assert page.evaluate("explorer.state.hover") == i
    data = inputs.load_data(loading.load_config(run))
    row = p["index"][i]
    image = np.round(data.test[row].numpy() / 16 * 255)  # the grey test image, from the data, not the page
    assert np.array_equal(_pixels(page, "#hoverImage"), image)
    code = vaelab.load(run).embed(data.test[row:row + 1].float() / 16).detach().numpy()
    assert np.abs(_pixels(page, "#hoverRecon") - _torch_levels(run, code)[0]).max() <= 1
    assert page.inner_text("#hoverLabel").split()[0] == str(int(data.y_test[row]))


def test_clicking_two_points_decodes_the_line_between_their_codes(page, run):
    p = page.evaluate("explorer.payload")
    xy = xd.unb64(p["xy"], "<f4").reshape(-1, 2)
    x0, x1, y0, y1 = p["extent"]
    i, j = _isolated(xy / [(x1 - x0), (y1 - y0)], 1 / 600)
    for k in (i, j):
        page.mouse.click(*page.evaluate(f"explorer.pointClient({k})"))
    strip = page.evaluate("document.querySelectorAll('#interp canvas').length")
    assert strip == 12  # data, 10 decoded steps, data
    codes = xd.unb64(p["codes"], "<f4").reshape(-1, 2).astype(np.float64)
    t = np.linspace(0, 1, 10)[:, None]
    want = _torch_levels(run, (1 - t) * codes[i] + t * codes[j])
    for s in range(10):
        got = _pixels(page, f"#interp canvas:nth-child({s + 2})")
        assert np.abs(got - want[s]).max() <= 1


def test_the_grid_fallback_interpolates_the_decoded_nodes(browser, run, tmp_path):
    path = tmp_path / "grid.html"
    path.write_text(explorer.page(explorer.payload(run, decoder="grid")))
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.goto(path.as_uri())
    p = pg.evaluate("explorer.payload")
    n, (x0, x1, y0, y1) = p["decoder"]["n"], p["extent"]
    nodes = xd.unb64(p["decoder"]["nodes"], "u1").reshape(n, n, 64).astype(np.float64)
    for fa, fb in ((0.31, 0.62), (0.5, 0.5), (0.9, 0.15)):
        pg.mouse.move(*pg.evaluate(f"explorer.toClient({x0 + fa * (x1 - x0)}, {y0 + fb * (y1 - y0)})"))
        s = pg.evaluate("explorer.state")
        fx, fy = (s["a"] - x0) / (x1 - x0) * (n - 1), (s["b"] - y0) / (y1 - y0) * (n - 1)
        i, j, tx, ty = int(fx), int(fy), fx % 1, fy % 1
        want = ((1 - ty) * ((1 - tx) * nodes[j, i] + tx * nodes[j, i + 1])
                + ty * ((1 - tx) * nodes[j + 1, i] + tx * nodes[j + 1, i + 1]))
        assert np.abs(_pixels(pg, "#out") - np.round(want)).max() <= 1
        # and the grid is close to the decoder itself: within a few levels between nodes 1/40 of the plane apart
        assert np.abs(_pixels(pg, "#out") - _torch_levels(run, s["z"])[0]).mean() < 8
    assert "grid" in pg.inner_text("#what")
    pg.close()


def test_the_page_loads_with_no_network_request(page):
    page.wait_for_load_state("networkidle")
    assert page.evaluate("explorer.state.ms") is not None  # it drew; the fixture checks the requests


def test_a_document_model_shows_its_words(browser, tmp_path):
    from corpora import two_topic_lines, write_tsv

    root = write_tsv(tmp_path / "corpus", two_topic_lines(60))
    run = vaelab.train(out=tmp_path / "nvdm", data=f"corpus:{root}", model="nvdm", likelihood="multinomial",
                       hidden=(16,), latent_dim=3, epochs=3, batch_size=8, lr=3e-3, device="cpu", log=lambda s: None,
                       finish=False)
    explorer.write_explorer(run)
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.goto((run / "explorer.html").as_uri())
    p = pg.evaluate("explorer.payload")
    assert p["decoder"]["mode"] == "page" and p["decoder"]["output"] == "softmax"
    vocab = p["vocabulary"]
    x0, x1, y0, y1 = p["extent"]
    model = vaelab.load(run)
    for fa, fb in ((0.2, 0.3), (0.8, 0.7)):  # the top words shift along the plane, as torch's softmax says
        pg.mouse.move(*pg.evaluate(f"explorer.toClient({x0 + fa * (x1 - x0)}, {y0 + fb * (y1 - y0)})"))
        z = pg.evaluate("explorer.state.z")
        with torch.no_grad():
            probs = model.decode(torch.tensor([z], dtype=torch.float32)).probs[0].numpy()
        shown = [li.split()[0] for li in pg.locator("#decoded ol").first.locator("li").all_inner_texts()]
        assert shown == [vocab[k] for k in np.argsort(-probs, kind="stable")[:12]]
    data = inputs.load_data(loading.load_config(run))
    pg.evaluate("explorer.showHover(0)")  # the same handler the pointer calls
    row = p["index"][0]
    counts = data.test.to_dense()[row].numpy()
    words = [li.split()[0] for li in pg.locator("#hover ol").first.locator("li").all_inner_texts()]
    assert [int(counts[vocab.index(w)]) for w in words] == sorted(counts[counts > 0], reverse=True)[:8]
    assert pg.inner_text("#hoverLabel").split()[0] == data.label_names[int(data.y_test[row])]
    pg.close()


def test_a_wider_latent_is_decoded_on_its_pca_plane_with_the_sliders(browser, tmp_path):
    run = vaelab.train(out=tmp_path / "run3", **(SMALL | dict(latent_dim=4, epochs=1)))
    explorer.write_explorer(run)
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.goto((run / "explorer.html").as_uri())
    pl = pg.evaluate("explorer.payload.plane")
    assert pl["what"] == "pca" and len(pl["others"]) == 2
    pg.locator("#sliders input").nth(1).fill("-1.5")  # the fourth principal direction at -1.5 sd
    x0, x1, y0, y1 = pg.evaluate("explorer.payload.extent")
    pg.mouse.move(*pg.evaluate(f"explorer.toClient({0.4 * x0 + 0.6 * x1}, {0.7 * y0 + 0.3 * y1})"))
    s = pg.evaluate("explorer.state")
    plane = xd.Plane(*(np.array(pl[k]) for k in ("origin", "axes", "others", "sds")), pl["what"])
    want_z = plane.code(np.array([[s["a"], s["b"]]]), np.array([0.0, -1.5]))[0]
    assert np.abs(np.array(s["z"]) - want_z).max() < 1e-9
    assert np.abs(_pixels(pg, "#out") - _torch_levels(run, want_z)[0]).max() <= 1
    pg.close()


def test_the_traversal_sweeps_each_dimension_and_its_sliders_decode_like_torch(browser, tmp_path):
    """Each dimension's strip decodes the prior's quantiles with the others at a test example's code; a slider
    moves one dimension of the code drawn beside it, and the page's decoder mean equals PyTorch's within 1e-5
    (float32 weights, float64 sums in the page against torch's float32)."""
    from scipy.stats import norm

    run = vaelab.train(out=tmp_path / "run4", **(SMALL | dict(latent_dim=3, epochs=1)))
    explorer.write_explorer(run)
    pg = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto((run / "explorer.html").as_uri())
    assert pg.is_visible("#travBox") and pg.locator("#travRows tr").count() == 3
    assert pg.locator("#travRows canvas").count() == 3 * 9
    codes = xd.unb64(pg.evaluate("explorer.payload.codes"), "<f4").reshape(-1, 3).astype(np.float64)
    assert pg.evaluate("explorer.trav.base") == 0 and np.array_equal(pg.evaluate("explorer.trav.z"), codes[0])
    sweep = np.repeat(codes[:1], 9, 0)
    sweep[:, 1] = norm.ppf((np.arange(9) + 0.5) / 9)  # z2 over N(0, 1)'s quantiles, z1 and z3 at example 0's code
    want = _torch_levels(run, sweep)
    for s in range(9):
        assert np.abs(_pixels(pg, f"#travRows tr:nth-child(2) canvas:nth-child({s + 1})") - want[s]).max() <= 1
    before = _pixels(pg, "#travOut")
    assert np.abs(before - _torch_levels(run, codes[0])[0]).max() <= 1  # the sliders start at the example's code
    pg.locator("#travRows input").nth(1).fill("1.5")  # z2 to about 1.5 (the slider's nearest step)
    z = np.array(pg.evaluate("explorer.trav.z"))
    assert abs(z[1] - 1.5) < 0.05 and z[1] != codes[0, 1] and np.array_equal(z[[0, 2]], codes[0, [0, 2]])
    after = _pixels(pg, "#travOut")
    assert (after != before).mean() > 0.5  # the drawn image changed (most of its pixels)
    with torch.no_grad():
        mean = vaelab.load(run).decode(torch.tensor(z[None], dtype=torch.float32)).mean.numpy()[0]
    assert np.abs(np.array(pg.evaluate("explorer.trav.mean")) - mean).max() < 1e-5
    assert np.abs(after - np.round(255 * np.clip(mean, 0, 1))).max() <= 1
    pg.evaluate("explorer.select(5)")  # a selected example becomes the base: its code, sliders reset
    assert pg.evaluate("explorer.trav.base") == 5 and np.array_equal(pg.evaluate("explorer.trav.z"), codes[5])
    assert errors == []
    pg.close()


# --- hostile strings from the data: each payload would set window.__pwned (and the title) if it ran ---------
PWN = "<img src=x onerror=\"window.__pwned=1;document.title='X'\">"


def _load(browser, html: str, path) -> tuple:
    """The page at path in a fresh tab, and the list its script errors land in."""
    path.write_text(html, encoding="utf-8")
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(path.as_uri())
    return pg, errors


SETTLED = """() => Promise.all([...document.images].map((im) => im.complete ? null : new Promise((done) => {
    im.addEventListener('error', done); im.addEventListener('load', done); })))
    .then(() => new Promise((done) => setTimeout(done, 0)))"""  # every <img> failed or loaded, its events handled


def _unpwned(pg, title: str) -> None:
    """No injected handler ran: the flag each payload sets is unset, the title is the page's own."""
    pg.evaluate(SETTLED)  # an <img src=x>'s error event (and a clicked javascript: link) would have run by now
    assert pg.evaluate("window.__pwned") is None and pg.title() == title


@pytest.fixture(scope="module")
def doc_run(tmp_path_factory):
    from corpora import two_topic_lines, write_tsv

    root = write_tsv(tmp_path_factory.mktemp("corpus") / "c", two_topic_lines(60))
    return vaelab.train(out=tmp_path_factory.mktemp("d") / "nvdm", data=f"corpus:{root}", model="nvdm",
                        likelihood="multinomial", hidden=(16,), latent_dim=3, epochs=2, batch_size=8, lr=3e-3,
                        device="cpu", log=lambda s: None, finish=False)


def test_labels_are_shown_as_text_on_hover_in_the_legend_and_in_the_interpolation(browser, run, tmp_path):
    p = explorer.payload(run)
    p["label_names"] = [f"{PWN}{i}" for i in range(10)]
    pg, errors = _load(browser, explorer.page(p), tmp_path / "labels.html")
    title = pg.title()
    xy = xd.unb64(p["xy"], "<f4").reshape(-1, 2)
    x0, x1, y0, y1 = p["extent"]
    i, j = _isolated(xy / [(x1 - x0), (y1 - y0)], 1 / 600)
    for k in (i, j):  # hover (showHover) then click: two clicks draw the interpolation, whose heading names both
        pg.mouse.click(*pg.evaluate(f"explorer.pointClient({k})"))
    _unpwned(pg, title)
    label = p["label_names"][xd.unb64(p["labels"], "<i4")[j]]
    assert pg.inner_text("#hoverLabel b") == label  # the markup shows as the text it is
    assert label in pg.inner_text("#interp") and f"{PWN}0" in pg.inner_text("#legend")
    assert pg.inner_text("#travBaseCap").startswith(label)  # the traversal's base: the last selected example
    assert errors == []
    pg.close()


def test_vocabulary_words_are_shown_as_text_on_hover_and_in_the_interpolation(browser, doc_run, tmp_path):
    p = explorer.payload(doc_run)
    p["vocabulary"] = [f"{PWN}{w}" for w in p["vocabulary"]]  # whichever words are shown, each carries one
    pg, errors = _load(browser, explorer.page(p), tmp_path / "words.html")
    title = pg.title()
    for i in range(4):
        pg.evaluate(f"explorer.showHover({i})")  # the pointer's handler: the document's words and its raised ones
    pg.evaluate("explorer.interpolate(0, 1, 10)")  # the clicks' handler: a table of words along the line
    _unpwned(pg, title)
    shown = pg.locator("#hover li").all_inner_texts() + pg.locator("#interp td").all_inner_texts()
    assert len(shown) > 10 and all(PWN in s for s in shown)  # the markup shows as the text it is
    assert errors == []
    pg.close()


def test_words_that_would_end_the_embedded_json_leave_the_page_whole(browser, doc_run, tmp_path):
    p = explorer.payload(doc_run)
    nasty = ["<!--<script>", "</script><script>window.__pwned=1</script>", "{{SCRIPT}}", "{{PAYLOAD}}",
             "a\u2028b\u2029c", "&lt;b&gt;", "<![CDATA[x]]>"]
    p["vocabulary"] = nasty + p["vocabulary"][len(nasty):]
    pg, errors = _load(browser, explorer.page(p), tmp_path / "json.html")
    assert errors == []
    assert pg.evaluate("explorer.payload.vocabulary") == p["vocabulary"]  # every word arrives exactly as written
    assert pg.evaluate("explorer.state.ms") is not None  # and the script ran to its first redraw
    _unpwned(pg, f"{p['title']} · vaelab explorer")
    pg.close()


def test_the_page_policy_refuses_inline_handlers_even_if_markup_got_in(browser, run, tmp_path):
    pg, errors = _load(browser, (run / "explorer.html").read_text(encoding="utf-8"), tmp_path / "csp.html")
    csp = pg.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
    assert "unsafe-inline" not in csp and "script-src 'sha256-" in csp
    pg.evaluate("""document.body.insertAdjacentHTML('beforeend',
        '<img src=x onerror="window.__pwned=1"><a id=js href="javascript:window.__pwned=1">x</a>')""")
    pg.click("#js")
    _unpwned(pg, pg.title())
    assert errors == [] and pg.evaluate("explorer.state.ms") is not None  # its own script runs
    pg.close()


# --- a phone's tap and the keyboard -------------------------------------------------------------------------
def test_a_tap_on_the_plane_decodes_where_it_lands_on_a_phone(browser, run):
    pg = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto((run / "explorer.html").as_uri())
    assert pg.evaluate("document.getElementById('plane').getBoundingClientRect().width") <= 390  # drawn to fit
    x0, x1, y0, y1 = pg.evaluate("explorer.payload.extent")
    before = _pixels(pg, "#out")
    a, b = x0 + 0.15 * (x1 - x0), y0 + 0.85 * (y1 - y0)  # far from the centre, where the page first decoded
    pg.touchscreen.tap(*pg.evaluate(f"explorer.toClient({a}, {b})"))
    state = pg.evaluate("explorer.state")
    span = (x1 - x0) / pg.evaluate("document.getElementById('plane').clientWidth")  # latent units per CSS pixel
    assert abs(state["a"] - a) <= span and abs(state["b"] - b) <= span  # the tap, scaled to the drawn canvas
    after = _pixels(pg, "#out")
    assert not np.array_equal(after, before)
    assert np.abs(after - _torch_levels(run, state["z"])[0]).max() <= 1  # the decoder at the tapped point
    assert pg.inner_text("#live").startswith("Decoded image at z = (")  # said for a screen reader
    assert errors == []
    pg.close()


def test_the_keyboard_moves_the_pointer_and_enter_selects_the_nearest_example(page, run):
    plane = page.locator("#plane")
    assert plane.get_attribute("tabindex") == "0" and "arrow keys" in plane.get_attribute("aria-label")
    x0, x1, y0, y1 = page.evaluate("explorer.payload.extent")
    page.keyboard.press("Tab")  # the plane is the page's first focusable element
    assert page.evaluate("document.activeElement.id") == "plane"
    start = page.evaluate("[explorer.state.a, explorer.state.b]")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowUp")
    s = page.evaluate("explorer.state")
    assert s["a"] == pytest.approx(start[0] + 0.04 * (x1 - x0), abs=1e-9)  # 2% of the plane a key
    assert s["b"] == pytest.approx(start[1] + 0.1 * (y1 - y0), abs=1e-9)  # 10% with Shift
    assert np.abs(_pixels(page, "#out") - _torch_levels(run, s["z"])[0]).max() <= 1
    assert page.evaluate("window.scrollY") == 0  # the arrows moved the pointer, not the page
    xy = xd.unb64(page.evaluate("explorer.payload.xy"), "<f4").reshape(-1, 2).astype(np.float64)
    scale = np.array([x1 - x0, y1 - y0])
    want = int(np.argmin((((xy - [s["a"], s["b"]]) / scale) ** 2).sum(1)))  # nearest on the drawn (square) plane
    page.keyboard.press("Enter")
    assert page.evaluate("explorer.state.selected") == [want]
    label = page.inner_text("#hoverLabel").split()[0]
    row = page.evaluate("explorer.payload.index")[want]
    assert page.inner_text("#live").startswith(f"Selected {label} (test example {row})")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")  # a second selection: the line between the two is decoded
    assert len(page.evaluate("explorer.state.selected")) == 2
    assert page.evaluate("document.querySelectorAll('#interp canvas').length") == 12
    assert page.get_attribute("#out", "role") == "img"
    assert "nearest test example" in page.get_attribute("#out", "aria-label")  # the picture's text alternative


# --- a conditional model (Sohn et al. 2015): the class selector chooses the y its decoder reads with z ---------
@pytest.fixture(scope="module")
def cvae(tmp_path_factory):
    run = vaelab.train(out=tmp_path_factory.mktemp("c") / "cvae", **(SMALL | dict(conditional=True)))
    explorer.write_explorer(run)
    return run


def _class_levels(run, z, y) -> np.ndarray:
    """255 x the mean of p(x | z, y) from PyTorch, for codes z (N, Dz) and class numbers y (N,)."""
    z = torch.tensor(np.atleast_2d(z), dtype=torch.float32)
    with torch.no_grad():
        mean = vaelab.load(run).decode(z, torch.eye(10)[list(y)]).mean.numpy()
    return np.round(255 * np.clip(mean, 0, 1))


def test_changing_the_class_changes_the_decoded_image_to_the_torch_decoder_s(browser, cvae):
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests, errors = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto((cvae / "explorer.html").as_uri())
    assert pg.locator("#classSel").is_visible()
    assert pg.locator("#classSel option").all_inner_texts() == [str(i) for i in range(10)]
    x0, x1, y0, y1 = pg.evaluate("explorer.payload.extent")
    pg.mouse.move(*pg.evaluate(f"explorer.toClient({0.3 * x0 + 0.7 * x1}, {0.6 * y0 + 0.4 * y1})"))
    z = pg.evaluate("explorer.state.z")
    first = _pixels(pg, "#out")
    assert np.abs(first - _class_levels(cvae, z, [0])[0]).max() <= 1  # class 0 until another is chosen
    for y in (7, 2):
        pg.select_option("#classSel", str(y))
        s = pg.evaluate("explorer.state")
        assert s["y"] == y and s["z"] == z  # the same code, another class
        got = _pixels(pg, "#out")
        assert np.abs(got - _class_levels(cvae, z, [y])[0]).max() <= 1
        assert np.abs(got - first).max() > 20  # and a visibly other picture
        assert f"given y = {y}" in pg.inner_text("#live")
    # a test example is reconstructed with its own label, whatever class is chosen
    p = pg.evaluate("explorer.payload")
    labels, codes = xd.unb64(p["labels"], "<i4"), xd.unb64(p["codes"], "<f4").reshape(-1, 2)
    i = int(np.flatnonzero(labels != 2)[0])
    pg.evaluate(f"explorer.showHover({i})")
    assert np.abs(_pixels(pg, "#hoverRecon") - _class_levels(cvae, codes[i], [labels[i]])[0]).max() <= 1
    pg.evaluate(f"explorer.select({i}); explorer.select({i + 1})")  # the line between two codes, decoded as class 2
    t = np.linspace(0, 1, 10)[:, None]
    want = _class_levels(cvae, (1 - t) * codes[i].astype(np.float64) + t * codes[i + 1], [2] * 10)
    for step in (0, 4, 9):
        assert np.abs(_pixels(pg, f"#interp canvas:nth-child({step + 2})") - want[step]).max() <= 1
    assert "given y = 2" in pg.inner_text("#interp")
    assert errors == [] and requests == [(cvae / "explorer.html").as_uri()]
    pg.close()


def test_the_class_selector_reads_each_class_s_own_grid(browser, cvae, tmp_path):
    pg, errors = _load(browser, explorer.page(explorer.payload(cvae, decoder="grid")), tmp_path / "grid.html")
    x0, x1, y0, y1 = pg.evaluate("explorer.payload.extent")
    pg.mouse.move(*pg.evaluate(f"explorer.toClient({0.45 * x0 + 0.55 * x1}, {0.5 * y0 + 0.5 * y1})"))
    z = pg.evaluate("explorer.state.z")
    for y in (0, 5):
        pg.select_option("#classSel", str(y))
        # between nodes the grid is close to the decoder of that class, and far from the other class's
        err = np.abs(_pixels(pg, "#out") - _class_levels(cvae, z, [y])[0]).mean()
        other = np.abs(_pixels(pg, "#out") - _class_levels(cvae, z, [5 - y])[0]).mean()
        assert err < 8 and other > err
    assert errors == []
    pg.close()


def test_hostile_class_names_are_shown_as_text_in_the_selector(browser, cvae, tmp_path):
    p = explorer.payload(cvae)
    p["classes"] = p["label_names"] = [f"{PWN}{i}" for i in range(10)]
    pg, errors = _load(browser, explorer.page(p), tmp_path / "classes.html")
    title = pg.title()
    assert pg.locator("#classSel option").all_inner_texts() == p["classes"]  # the markup shows as the text it is
    assert pg.locator("#classBox img").count() == 0
    pg.select_option("#classSel", "3")
    assert f"given y = {PWN}3" in pg.inner_text("#live")
    _unpwned(pg, title)
    assert errors == []
    pg.close()


def test_an_unconditional_page_has_no_class_selector(page):
    assert page.locator("#classBox").is_hidden() and page.evaluate("explorer.payload.classes") is None
