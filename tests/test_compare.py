"""compare: one table of runs and baselines, ranked by test NLL, and each run's report shows its row."""

import json

import pytest

import vaelab
from vaelab import baselines as B
from vaelab import compare
from vaelab.cli import run as cli
from vaelab.config import Config

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
                "--baseline", str(family / "single"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    md = (out / "compare.md").read_text()
    assert md in printed and "<table>" in (out / "compare.html").read_text()
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
    assert json.loads((family / "ae" / "comparison.json").read_text())["rank"] is None


def test_compare_refuses_a_run_without_eval(tmp_path, capsys):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=1, **SMALL)
    code = cli(["compare", str(run), "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vaelab evaluate" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "cmp").exists() and not (run / "comparison.json").exists()
