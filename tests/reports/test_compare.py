"""compare: one table of runs and baselines, ranked by test NLL, and each run's report shows its row."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import vaelab
from vaelab.baselines import mixtures as B
from vaelab.cli.main import run as cli
from vaelab.config.schema import Config
from vaelab.reports import compare
from vaelab.reports.html import POLICY

SMALL = dict(data="digits", hidden=(32,), latent_dim=4, batch_size=64, device="cpu", eval_k=30, log=lambda s: None)


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    vae = vaelab.train(out=root / "vae", epochs=8, finish=False, **SMALL)
    vaelab.evaluate(vae)
    iw = vaelab.train(finish=False, out=root / "iwae", model="iwae", k=3, epochs=2, **SMALL)
    vaelab.evaluate(iw)
    ae = vaelab.train(finish=False, out=root / "ae", model="ae", epochs=2, **SMALL)
    vaelab.evaluate(ae)
    B.fit("single", Config(), B.Options(), root / "single")
    return root


def test_rows_come_from_the_files_and_are_ranked_by_nll(family, capsys):
    out = family / "cmp"
    assert cli(["compare", str(family / "vae"), str(family / "iwae"), str(family / "ae"),
                "--baseline", str(family / "single"), "--out", str(out), "--update-reports"]) == 0
    printed = capsys.readouterr().out
    md = (out / "compare.md").read_text()
    assert md in printed and '<table class="compare">' in (out / "compare.html").read_text()
    rows = compare.rank([compare.run_row(family / n) for n in ("vae", "iwae", "ae")]
                        + [compare.baseline_row(family / "single")])
    nlls = [r["nll"] for r in rows if r["nll"] is not None]
    assert nlls == sorted(nlls) and rows[-1]["name"] == "ae" and rows[-1]["rank"] is None
    vae = next(r for r in rows if r["name"] == "vae")
    ev = json.loads((family / "vae" / "eval.json").read_text())
    assert vae["nll"] == ev["nll"] and vae["recon_error"] == -ev["recon"] and vae["k"] == 30
    assert vae["params"] == (64 * 32 + 32) + (32 * 8 + 8) + (4 * 32 + 32) + (32 * 64 + 64)  # 64-32-2x4, 4-32-64
    metrics = [json.loads(s) for s in (family / "vae" / "metrics.jsonl").read_text().splitlines()]
    assert vae["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in metrics))
    single = next(r for r in rows if r["name"] == "single")
    assert single["nll_estimator"] == "exact" and single["test_points"] == vae["test_points"]
    # every row's line in the Markdown names its estimator
    assert f"{vae['nll']:.2f} (NLL-30)" in md and f"{single['nll']:.2f} (exact)" in md
    assert "Not every row" not in md


def test_each_run_report_shows_its_place(family):
    for name in ("vae", "iwae", "ae"):
        place = json.loads((family / name / "comparison.json").read_text())
        assert place["of"] == 3 and place["this"] == str(family / name)
        html = (family / name / "report.html").read_text()
        assert "<h2>Comparison</h2>" in html and "background:#fff3c4" in html
        assert html.count("background:#fff3c4") == 1
        start = html.index("<h2>Comparison</h2>")
        section = html[start:html.index("<h2", start + 1)]
        hrefs = re.findall(r'<a href="([^"]+)">', section)
        assert sorted((family / name / h).resolve() for h in hrefs[1:]) == sorted(
            [(family / n / "report.html").resolve() for n in ("vae", "iwae", "ae")]
            + [(family / "single" / "baseline.json").resolve()])
        assert (family / name / hrefs[0]).resolve() == (family / "cmp" / "compare.html").resolve()  # the page itself
        assert 'href="../cmp/compare.html">comparison page</a>' in html  # in the links under the title
    assert json.loads((family / "ae" / "comparison.json").read_text())["rank"] is None


def test_compare_refuses_a_run_without_eval(tmp_path, capsys):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=1, **SMALL)
    code = cli(["compare", str(run), "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vaelab evaluate" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "cmp").exists() and not (run / "comparison.json").exists()


def test_compare_html_hides_empty_columns_links_every_row_and_fits_1280_pixels(family):
    out = family / "cmp"
    if not (out / "compare.html").exists():
        cli(["compare", str(family / "vae"), str(family / "iwae"), str(family / "ae"), "--baseline",
             str(family / "single"), "--out", str(out), "--update-reports"])
    html = (out / "compare.html").read_text()
    heads = re.findall(r"<th>([^<]+)</th>", html)
    assert "amortization gap" not in heads and "test perplexity" not in heads  # no row has one
    assert "active units" in heads and "recon error" in heads  # the runs have them, the baseline not
    rows = len(re.findall(r"<tr[ >]", html)) - 1
    names = re.findall(r'<td class="name"><a href="([^"]+)">([^<]+)</a>(?: <span class="badge">best</span>)?</td>',
                       html)
    assert rows == len(names) == 4
    assert all((out / href).is_file() for href, _ in names)
    assert {(out / h).resolve() for h, n in names if n != "single"} == {(family / n / "report.html").resolve()
                                                                      for n in ("vae", "iwae", "ae")}


FULL_ROW = {"kind": "run", "model": "vae 784-512-256-128-64-32, gaussian-learned, IWAE-50, student-t q, laplace prior",
            "params": 1234567, "train_seconds": 12345.6, "elbo": -1234.56, "iwae": -1230.12, "nll": 1230.12,
            "nll_estimator": "NLL-5000", "k": 5000, "active_units": 32, "recon_error": 1200.5,
            "noisy_recon_error": 1300.25, "noise": "gaussian 0.25", "gap": 12.345, "gap_epoch": 100,
            "perplexity": 1234.5, "npmi": 0.123, "test_points": "fashion-mnist test (10000, dequantized)"}


def test_a_wide_compare_html_fits_1280_pixels_and_keeps_names_whole(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium to measure the page")
    rows = compare.rank([FULL_ROW | {"name": f"hidden512x256-latent_dim{i}-lr0.0003-seed{i}",
                                     "path": str(tmp_path / f"run{i}")} for i in range(6)])
    probe = tmp_path / "probe.html"  # the page, reporting its table's right edge and its names' lines
    js = ("const r=Math.ceil(document.querySelector('table').getBoundingClientRect().right);let bad=0,lines=0;"
          "for(const a of document.querySelectorAll('td.name a')){const t=a.firstChild;let top=null;"
          "for(let i=0;i<t.length;i++){const g=document.createRange();g.setStart(t,i);g.setEnd(t,i+1);"
          "const y=g.getBoundingClientRect().top;if(top!==null&&y>top+1){lines++;if(t.data[i-1]!=='-')bad++;}top=y;}}"
          "document.title='W'+r+'L'+lines+'B'+bad;")
    page = compare.html_page(rows, tmp_path, "now").replace(POLICY, "")  # the page's own policy allows no script
    probe.write_text(page.replace("</body>", f"<script>{js}</script></body>"))
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<title>W(\d+)L(\d+)B(\d+)</title>", done.stdout)
    if found is None:
        pytest.skip(f"chromium did not render the page: {done.stderr[-300:]}")
    width, breaks, mid_word = map(int, found.groups())
    assert width <= 1280 and breaks > 0 and mid_word == 0  # long names wrap, only after a '-'


# a folder name that is a script URL, names whose '#', '%' or '?' a bare link would read as URL syntax, and names
# that hold terminal escapes or a newline (compare.md and the terminal show them spelled out)
ODD_NAMES = ("javascript:document.title='X';1", "a#b", "50%41", "q?x=1", "\x1b]0;PWNED\x07\x1b[2J", "two\nlines")


def _file(url: str) -> str:
    """The file a file: URL points at."""
    return unquote(urlparse(url).path)


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """One evaluated run copied under each of ODD_NAMES, compared into the folder that holds them."""
    root = tmp_path_factory.mktemp("odd")
    run = vaelab.train(finish=False, out=root / "trained", epochs=1, **SMALL)
    vaelab.evaluate(run, k=5)
    for name in ODD_NAMES:
        shutil.copytree(run, root / name)
    # compare.html beside the runs: a row's link is then the bare folder name, where a URL scheme could start
    compare.compare([str(root / n) for n in ODD_NAMES], out=root, update_runs=True)
    return root


def test_compare_prints_and_writes_odd_names_spelled_out(odd, capsys):
    assert cli(["compare", *(str(odd / n) for n in ODD_NAMES), "--out", str(odd), "--overwrite"]) == 0
    printed, md = capsys.readouterr().out, (odd / "compare.md").read_text()
    for text in (printed, md):
        assert "\x1b" not in text and "\\x1b]0;PWNED\\x07\\x1b[2J" in text and "two\\x0alines" in text
    assert sum(line.startswith("| ") for line in md.splitlines()) == 2 + len(ODD_NAMES)  # one row per run


def test_every_report_link_leads_to_a_file_whatever_the_folders_are_called(odd):
    for name in ODD_NAMES:
        report = odd / name / "report.html"
        html = report.read_text()
        for link in re.findall(r'<a href="([^"]+)"', html):
            if link.startswith("#"):  # a place on the page itself
                assert f'id="{link[1:]}"' in html
                continue
            link = link.replace("&amp;", "&").replace("&#x27;", "'")
            assert urlparse(link).scheme == "" and (odd / name / unquote(link)).exists(), link


def test_row_links_open_each_report_and_never_run_script(odd):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium to click the links")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        pg = browser.new_page()
        names = [r["name"] for r in compare.rank([compare.run_row(odd / n) for n in ODD_NAMES])]  # the rows' order
        for i, name in enumerate(names):
            pg.goto((odd / "compare.html").as_uri())
            pg.locator("td.name a").nth(i).click()
            pg.wait_for_load_state()
            pg.wait_for_timeout(200)  # a javascript: link would have run by now
            assert pg.title() != "X" and _file(pg.url) == str(odd / name / "report.html"), (name, pg.url)
            assert pg.title().endswith(" · vaelab report")  # the report itself loaded
        browser.close()


def test_compare_never_replaces_a_comparison_silently_and_leaves_the_runs_alone(family, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def runs() -> dict:  # every file of the compared runs, with its bytes
        return {p: p.read_bytes() for n in ("vae", "iwae") for p in (family / n).rglob("*") if p.is_file()}

    before = runs()
    assert cli(["compare", str(family / "vae"), str(family / "iwae")]) == 0
    first = tmp_path / "comparison-vae+iwae"  # named after the runs compared, in the working folder
    written = (first / "compare.md").read_bytes()
    assert cli(["compare", str(family / "vae"), "--baseline", str(family / "single")]) == 0
    assert (tmp_path / "comparison-vae+single" / "compare.md").is_file()  # other runs: another folder
    assert (first / "compare.md").read_bytes() == written
    capsys.readouterr()
    # the same runs again: refused (one error line, exit 2) and the first comparison kept as it was
    assert cli(["compare", str(family / "vae"), str(family / "iwae")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaelab: error: ") and "--overwrite" in err[0]
    assert (first / "compare.md").read_bytes() == written
    assert cli(["compare", str(family / "iwae"), "--out", str(first)]) == 2  # a chosen --out too
    assert (first / "compare.md").read_bytes() == written
    assert cli(["compare", str(family / "iwae"), "--out", str(first), "--overwrite"]) == 0
    assert (first / "compare.md").read_bytes() != written
    assert runs() == before  # no report.html or comparison.json of the runs written without --update-reports


def test_the_default_folder_name_is_safe_and_different_for_different_runs(tmp_path):
    names = [str(tmp_path / n) for n in ("a b", "javascript:x", "../..", "ü")]
    out = compare.default_out(names[:2])
    assert out == Path("comparison-a_b+javascript_x") and out.parent == Path(".")
    many = [str(tmp_path / f"hidden512-latent{i}-seed{i}") for i in range(12)]
    long, other = compare.default_out(many), compare.default_out(many[:-1] + [str(tmp_path / "x")])
    assert len(long.name) < 90 and long != other and long.name.startswith("comparison-hidden512-latent0")
