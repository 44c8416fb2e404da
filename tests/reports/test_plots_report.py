"""Plots write valid PNGs from synthetic arrays; the report is one escaped, self-contained HTML file."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaelab.reports import plots
from vaelab.reports.report import write_report

RNG = np.random.default_rng(0)


def _check_png(path: Path, min_side: int = 100) -> tuple[int, int]:
    """The file exists, Pillow reads it as a PNG, and it is a plausible size in pixels."""
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert min_side <= w <= 3000 and min_side <= h <= 3000
    return w, h


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The matplotlib Figures the plot functions save, in order (each is still written as a PNG)."""
    figures = []
    save = plots._save

    def keep(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _picture(fig) -> np.ndarray:
    """The array the figure's one image shows."""
    (image,) = fig.axes[0].get_images()
    return np.asarray(image.get_array())


def _metrics(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 100.0 / e, "val_elbo": -110.0 / e, "val_iwae": -105.0 / e,
             "train_seconds": 1.5 + 0.1 * e} for e in range(1, epochs + 1)]


@pytest.mark.parametrize("epochs", [1, 5])
def test_curves(tmp_path: Path, drawn: list, epochs: int) -> None:
    out = plots.curves(_metrics(epochs), tmp_path / "deep" / "curves.png")
    assert out == tmp_path / "deep" / "curves.png"
    _check_png(out)
    loss, seconds = drawn[-1].axes
    e = np.arange(1, epochs + 1)
    lines = {line.get_label(): line for line in loss.get_lines()}
    assert set(lines) == {"train loss", "validation −ELBO", "validation −IWAE"}
    for label, values in (("train loss", 100 / e), ("validation −ELBO", 110 / e), ("validation −IWAE", 105 / e)):
        assert np.array_equal(lines[label].get_xdata(), e) and np.allclose(lines[label].get_ydata(), values), label
    assert np.allclose([bar.get_height() for bar in seconds.patches], 1.5 + 0.1 * e)
    assert f"total {sum(1.5 + 0.1 * e):.1f} s" in seconds.get_title()


def test_curves_without_seconds_or_validation(tmp_path: Path, drawn: list) -> None:
    rows = [{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0, "val_recon": -2.5}]
    _check_png(plots.curves(rows, tmp_path / "c.png"))
    (ax,) = drawn[-1].axes  # no timing panel
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
    assert lines == {"train loss": ([1, 2], [3.0, 2.0]), "validation −log p(x | f(x))": ([2], [2.5])}


def test_tile_layout_is_exact() -> None:
    images = np.zeros((5, 4, 3))
    images[4, 2, 1] = 1.0  # image 4 -> row 1, column 1 when 3 per row
    grid = plots.tile(images, nrow=3, pad=2, pad_value=0.25)
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (3 + 2) + 2)
    y, x = 2 + 1 * (4 + 2) + 2, 2 + 1 * (3 + 2) + 1
    assert grid[y, x] == 1.0
    assert np.count_nonzero(grid == 1.0) == 1
    assert grid[0, 0] == 0.25 and grid[2, 2] == 0.0  # padding, then the first tile's corner
    assert np.all(grid[8:12, 12:15] == 0.25)  # the empty sixth tile shows the padding value


def test_tile_channels() -> None:
    rgb = np.zeros((2, 3, 4, 4))
    rgb[1, 0, 0, 0] = 1.0  # red corner of the second image
    grid = plots.tile(rgb, nrow=2, pad=1)
    assert grid.shape == (6, 11, 3)
    assert grid[1, 6, 0] == 1.0 and grid[1, 6, 1] == 0.0
    grey = plots.tile(np.ones((3, 1, 2, 2)), nrow=1, pad=0)
    assert grey.shape == (6, 2) and np.all(grey == 1.0)


def test_image_grid_recon_samples(tmp_path: Path, drawn: list) -> None:
    imgs = RNG.random((20, 28, 28))
    _check_png(plots.image_grid(imgs, tmp_path / "g.png", nrow=5, title="grid", row_labels=list("abcd")))
    assert np.array_equal(_picture(drawn[-1]), plots.tile(imgs, 5))  # 4 rows of 5 tiles, each image as given
    assert [t.get_text() for t in drawn[-1].axes[0].get_yticklabels()] == list("abcd")
    rgb = RNG.random((6, 3, 8, 8))
    _check_png(plots.image_grid(rgb, tmp_path / "rgb.png", nrow=3))
    assert np.array_equal(_picture(drawn[-1]), plots.tile(rgb.transpose(0, 2, 3, 1), 3))
    # data above reconstructions, 8 a row: rows data[:8], recon[:8], data[8:16], recon[8:16]
    _check_png(plots.recon(imgs, 1 - imgs, tmp_path / "recon.png", n=16))
    order = np.concatenate([imgs[:8], 1 - imgs[:8], imgs[8:16], 1 - imgs[8:16]])
    assert np.array_equal(_picture(drawn[-1]), plots.tile(order, 8))
    assert [t.get_text() for t in drawn[-1].axes[0].get_yticklabels()] == ["data", "reconstruction"] * 2
    _check_png(plots.recon(imgs[:5], imgs[:5], tmp_path / "recon5.png", n=16), min_side=60)
    assert np.array_equal(_picture(drawn[-1]), plots.tile(np.concatenate([imgs[:5], imgs[:5]]), 5))
    many = RNG.random((70, 1, 28, 28))
    _check_png(plots.samples(many, tmp_path / "samples.png"))
    assert np.array_equal(_picture(drawn[-1]), plots.tile(many[:64, 0], 8))  # the first 64, 8 x 8


def test_latent_draws_every_point_where_it_is(tmp_path: Path, drawn: list) -> None:
    z = RNG.normal(size=(300, 2))
    _check_png(plots.latent(z, None, tmp_path / "latent.png", title="codes"))
    (points,) = drawn[-1].axes[0].collections
    assert np.array_equal(points.get_offsets(), z)
    classes = np.arange(300) % 10
    _check_png(plots.latent(z, classes, tmp_path / "classes.png", title="codes"))
    ax = drawn[-1].axes[0]
    assert [c.get_label() for c in ax.collections] == [str(c) for c in range(10)]
    for c, points in enumerate(ax.collections):  # one colour per class, each class's points exactly
        assert np.array_equal(points.get_offsets(), z[classes == c])
    assert len({tuple(p.get_facecolor()[0][:3]) for p in ax.collections}) == 10
    shade = np.linspace(0, 1, 300)
    _check_png(plots.latent(z, shade, tmp_path / "shade.png", title="codes"))
    ax, bar = drawn[-1].axes  # the points and a colorbar
    (points,) = ax.collections
    assert np.array_equal(points.get_offsets(), z) and np.array_equal(points.get_array(), shade)


def test_manifold_interpolation_topics(tmp_path: Path, drawn: list) -> None:
    n = 7
    ticks = np.linspace(-2, 2, n)
    tiles = RNG.random((n * n, 8, 8))
    _check_png(plots.manifold(tiles, tmp_path / "manifold.png", n=n, ticks_x=ticks, ticks_y=ticks,
                              title="manifold"))
    picture = _picture(drawn[-1])
    assert picture.shape == (n * 9 + 1, n * 9 + 1)  # n x n tiles of 8 with a 1-pixel gutter (8 < 16)
    assert np.array_equal(picture, plots.tile(tiles, n, pad=1))
    ax = drawn[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{ticks[c]:.2g}" for c in (0, 2, 3, 4, 6)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{ticks[n - 1 - r]:.2g}" for r in (0, 2, 3, 4, 6)]
    rows = RNG.random((4, 10, 28, 28))
    _check_png(plots.interpolation(rows, tmp_path / "interp.png"))
    assert np.array_equal(_picture(drawn[-1]), plots.tile(rows.reshape(40, 28, 28), 10))
    assert len(drawn[-1].axes[0].patches) == 2  # the data columns, framed
    table = [("z1", ["game", "team", "season"], ["god", "church"]),
             ("z2", ["price " * 3] * 12, [])]
    _check_png(plots.topics(table, tmp_path / "topics.png", title="document topics"))
    (tab,) = drawn[-1].axes[0].tables
    cells = {key: cell.get_text().get_text() for key, cell in tab.get_celld().items()}
    assert [cells[(0, c)] for c in range(3)] == ["dimension", "+ end", "− end"]
    assert [cells[(1, c)] for c in range(3)] == ["z1", "game, team, season", "god, church"]
    words = lambda text: " ".join(text.split())  # noqa: E731 (the long cell is wrapped onto lines)
    assert cells[(2, 0)] == "z2" and words(cells[(2, 1)]) == words(", ".join(["price " * 3] * 12))
    assert cells[(2, 2)] == "–"


def _run_folder(root: Path) -> Path:
    run = root / "mnist-vae-run"
    (run / "plots").mkdir(parents=True)
    (run / "config.toml").write_text('data = "digits"\nmodel = "vae"\nhidden = [200]\nlatent_dim = 20\n'
                                     'note = "<script>alert(1)</script>"\n[extra]\nwarmup = 0.5\n')
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in _metrics(3)))
    ev = {"split": "test", "k": 1000, "n": 360, "elbo": -30.1234, "iwae": -28.9, "nll": 28.9, "recon": -25.0,
          "kl": 5.1, "active_units": 7, "bits_per_dim": 0.65, "seconds": 3.2,
          "estimator_notes": {"iwae": "IWAE-1000 lower bound"}}
    (run / "eval.json").write_text(json.dumps(ev))
    (run / "amortization_gap.json").write_text(json.dumps({"gap": 1.2345, "per_k": {"1": 2.0}}))
    plots.curves(_metrics(3), run / "plots" / "curves.png")
    plots.samples(RNG.random((64, 8, 8)), run / "plots" / "samples.png")
    return run


def test_report(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    page = out.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 2
    files = {p.read_bytes() for p in (run / "plots").glob("*.png")}
    assert {base64.b64decode(u) for u in uris} == files
    # the picture first: the samples precede every table; the curves sit with the training numbers
    assert re.search(r'<img [^>]*alt="(\w+):', page)[1] == "samples" and page.index("<img") < page.index("<table")
    assert page.index("<h2>Training</h2>") < page.index('alt="curves:') < page.index("<h2>Config</h2>")
    for text in ("mnist-vae-run", "-30.1234", "-28.9000", "28.9000", "1000", "360", "IWAE-1000", "NLL-1000",
                 "nats per example", "amortization_gap", "1.2345", "estimator_notes", "latent_dim",
                 "total training seconds"):
        assert text in page, text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?:", page)
    assert "http://" not in page and "https://" not in page


def test_report_without_eval_or_plots(tmp_path: Path) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    (run / "config.toml").write_text('model = "vae"\n')
    (run / "metrics.jsonl").write_text(json.dumps(_metrics(1)[0]) + "\n{half-writ")
    page = write_report(run).read_text()
    assert "<h2>Evaluation</h2>" not in page and "<h2>Plots</h2>" not in page
    assert "<h2>Training</h2>" in page and "<h2>Config</h2>" in page


def test_report_links_shows_provenance_and_only_the_settings_that_matter(tmp_path: Path) -> None:
    import platform

    import torch

    from vaelab.config.schema import Config, to_toml

    run = _run_folder(tmp_path)
    (run / "config.toml").write_text(to_toml(Config(data="digits", hidden=(200,), save_every=5)))
    session = {"command": "vaelab train --save-every 5", "torch": torch.__version__,
               "python": platform.python_version(), "first_epoch": 1, "last_epoch": 3, "git_commit": "abc123",
               "git_dirty": True, "threads": 2}
    (run / "provenance.json").write_text(json.dumps({"sessions": [session, session | {"first_epoch": 4,
                                                                                       "last_epoch": 6}]}))
    (run / "explorer.html").write_text("<html></html>")
    page = write_report(run).read_text()
    files = page[page.index('<h2 id="files">'):]
    listed = re.findall(r'<a href="\./([^"]+)"', files)
    on_disk = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and p.name != "report.html")
    assert sorted(listed) == on_disk and {"config.toml", "metrics.jsonl", "eval.json", "provenance.json",
                                          "amortization_gap.json", "explorer.html"} <= set(listed)
    assert "plots/samples.png" in listed  # the pictures too, not only the run's text files
    prov = page[page.index("<h2>Provenance</h2>"):page.index("<h2>Config</h2>")]
    rows = re.findall(r"<tr><th>(\d+)</th>(.*?)</tr>", prov)
    assert [n for n, _ in rows] == ["2", "1"] and "4–6" in rows[0][1] and "1–3" in rows[1][1]  # newest first
    assert prov.count("<code>vaelab train --save-every 5</code>") == 2
    assert torch.__version__ in prov and "abc123 (with uncommitted changes)" in prov
    shared = prov[prov.index("<h3>Shared"):]
    assert torch.__version__ in shared and "abc123" in shared  # the same in both sessions: said once
    key = page[page.index("<h2>Config</h2>"):page.index("<details>")]
    shown = re.findall(r"<tr><th>([a-z_]+)</th>", key)
    assert shown[:4] == ["data", "model", "hidden", "latent_dim"] and "save_every" in shown and "binarize" in shown
    assert not {"vocab_size", "stop_words", "noise", "out", "shards", "eval_k"} & set(shown)  # images, vae, defaults
    full = page[page.index("<details>"):page.index("</details>")]
    assert "vocab_size" in full and "eval_k" in full  # the whole config, folded away


def test_a_resumed_run_has_a_provenance_row_per_session_and_none_for_a_session_that_trained_nothing(
        tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    sessions = [{"command": f"vaelab train --resume {i}", "first_epoch": 3 * i + 1, "last_epoch": 3 * i + 3,
                 "started": f"2026-01-0{i + 1}T00:00:00+00:00", "torch": "2.13"} for i in range(4)]
    sessions.append({"command": "vaelab train --resume again", "first_epoch": 13, "last_epoch": 12, "torch": "2.13"})
    (run / "provenance.json").write_text(json.dumps({"sessions": sessions}))
    prov = write_report(run).read_text()
    prov = prov[prov.index("<h2>Provenance</h2>"):prov.index("<h2", prov.index("<h2>Provenance</h2>") + 1)]
    head = re.search(r"<tr><th>session</th>(.*?)</tr>", prov)[1]
    assert re.findall(r"<tr><th>(\d+)</th>", prov) == ["4", "3", "2", "1"]  # a row each, newest first
    assert "epochs trained" in head and "torch" not in head  # the same in every session: below, once
    assert "none" not in prov and "--resume again" not in prov and "1 more session resumed" in prov
    assert [e for e in re.findall(r"<td>(\d+–\d+)</td>", prov)] == ["10–12", "7–9", "4–6", "1–3"]


def test_the_settings_of_a_document_run_have_no_image_keys() -> None:
    from vaelab.config.schema import Config
    from vaelab.reports.sections import key_settings

    shown = key_settings(Config(data="corpus:x", model="nvdm", likelihood="multinomial", vocab_size=500).to_dict())
    assert shown["vocab_size"] == 500 and "stop_words" in shown
    assert not {"binarize", "image_size", "dequantize", "posterior_scale", "noise"} & set(shown)
