"""Command line: the happy path end to end, and bad input -> one line, exit 2, nothing written."""

import gzip
import json
import math
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from clitools import expect_error as _bad
from clitools import snapshot
from scipy.stats import norm

from vaelab.cli.main import run as cli
from vaelab.reports import plots, views
from vaelab.runs import inputs, loading

FAST = ["--hidden", "32", "--latent-dim", "2", "--batch-size", "128", "--device", "cpu", "--eval-k", "20"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert cli(["-q", "train", "--epochs", "2", "--out", str(out), *FAST]) == 0
    return out


def test_train_writes_a_complete_run(trained):
    for name in ("config.toml", "metrics.jsonl", "model.safetensors", "checkpoint.safetensors", "eval.json",
                 "report.html"):
        assert (trained / name).is_file(), name
    for kind in ("curves", "recon", "samples", "latent", "manifold", "interp"):
        assert (trained / "plots" / f"{kind}.png").is_file(), kind
    ev = json.loads((trained / "eval.json").read_text())
    assert math.isfinite(ev["nll"]) and ev["nll"] > 0 and ev["estimators"]["nll"] == "NLL-20 = -IWAE-20"
    assert ev["k"] == 20
    # bits per dimension of the 64 binary pixels: the NLL over 64 log 2
    assert ev["bits_per_dim"] == pytest.approx(ev["nll"] / (64 * 0.6931471805599453), rel=1e-12)
    # active units counted from the posterior means of the test split: Var_x E_q[z_u] > 0.01 (Burda et al. 2016)
    c, model = loading.load_model(trained)
    x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))
    with torch.no_grad():
        spread = model.encode(x).mean.double().var(0, unbiased=False)  # (2,)
    assert ev["active_units"] == int((spread > 0.01).sum()), spread
    html = (trained / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6


def test_manifold_and_latent_draw_the_models_pictures(trained, monkeypatch):
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    view = views.RunView(trained)
    model = view.model
    view.manifold(n=5)
    (image,) = figures[-1].axes[0].get_images()
    picture = np.asarray(image.get_array())  # 5 x 5 tiles of 8 x 8 pixels with a 1-pixel gutter
    assert picture.shape == (46, 46)
    tiles = picture[1:, 1:].reshape(5, 9, 5, 9)[:, :8, :, :8].transpose(0, 2, 1, 3).reshape(25, 8, 8)
    # by hand: z at the N(0, 1) quantiles (i + 0.5) / 5 of each axis, the top row the highest z2
    q = norm.ppf((np.arange(5) + 0.5) / 5)
    z = torch.tensor([(q[c], q[4 - r]) for r in range(5) for c in range(5)], dtype=torch.float32)
    with torch.no_grad():
        means = model.decode(z).mean.reshape(25, 8, 8).numpy()  # Bernoulli means
    assert np.allclose(tiles, means, atol=1e-6)
    assert len({t.tobytes() for t in tiles}) == 25  # every tile differs
    view.latent()
    ax = figures[-1].axes[0]
    with torch.no_grad():
        codes = model.encode(view.x).mean.numpy()  # (N, 2) posterior means of the test split
    labels = view.y.numpy()
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(codes) == len(labels)
    for c, points in zip(np.unique(labels), ax.collections):  # one scatter per digit, at its images' codes
        assert np.allclose(points.get_offsets(), codes[labels == c], atol=1e-6)


def test_evaluate_and_plot_commands(trained, capsys):
    assert cli(["-q", "evaluate", str(trained), "--k", "30", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "NLL-30" in out and "IWAE-30" in out
    ev = json.loads((trained / "evals" / "val-k30.json").read_text())  # kept beside the test split's
    assert ev["k"] == 30 and ev["split"] == "val"
    assert json.loads((trained / "eval.json").read_text())["split"] == "test"  # eval.json: the test split's
    assert cli(["plot", str(trained), "--kind", "manifold", "--range", "-3,3,-2,2"]) == 0
    assert cli(["report", str(trained)]) == 0


def test_python_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "vaelab", "configs"], capture_output=True, text=True)
    assert r.returncode == 0 and "seed-mlp-vae" in r.stdout


def test_unknown_dataset(tmp_path, capsys):
    err = _bad(["-q", "train", "--data", "cifar-99", "--out", str(tmp_path / "r")], capsys)
    assert "unknown dataset" in err and not (tmp_path / "r").exists()


def test_existing_run_is_not_overwritten(trained, capsys):
    before = snapshot(trained)
    err = _bad(["-q", "train", "--epochs", "1", "--out", str(trained), *FAST], capsys)
    assert err == (f"vaelab: error: {trained} already holds a run; `vaelab train --resume {trained}` continues it; "
                   "--overwrite replaces it")  # the flags, not the library's keywords
    assert snapshot(trained) == before


def test_overwrite_replaces_a_run(tmp_path):
    out = tmp_path / "r"
    assert cli(["-q", "train", "--epochs", "1", "--out", str(out), "--no-report", *FAST]) == 0
    assert cli(["-q", "train", "--epochs", "2", "--out", str(out), "--no-report", "--overwrite", *FAST]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_bad_idx_files(tmp_path, capsys):
    d = tmp_path / "fm"
    d.mkdir()
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2049, 10, 28, 28) + bytes(10 * 784))  # wrong magic
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(d / name, "wb") as f:
            f.write(b"\x00")
    _bad(["-q", "train", "--data", "mnist", "--data-dir", str(d), "--out", str(tmp_path / "r")], capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("bad", ["nan", "range"])
def test_bad_values(tmp_path, capsys, bad):
    x = np.random.default_rng(0).random((50, 16)).astype(np.float32)
    x[3, 3] = np.nan if bad == "nan" else 1.7
    np.savez(tmp_path / "x.npz", x=x)
    _bad(["-q", "train", "--data", f"npz:{tmp_path / 'x.npz'}", "--out", str(tmp_path / "r")], capsys)
    assert not (tmp_path / "r").exists()


def test_corrupt_checkpoint(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    (run / "model.safetensors").write_bytes(b"not a safetensors file")
    before = snapshot(run)
    err = _bad(["-q", "evaluate", str(run)], capsys)
    assert "corrupt" in err and snapshot(run) == before
    (run / "checkpoint.safetensors").write_bytes((run / "checkpoint.safetensors").read_bytes()[:100])
    _bad(["-q", "train", "--resume", str(run), "--epochs", "3"], capsys)


def test_checkpoint_with_wrong_shapes(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    text = (run / "config.toml").read_text().replace("latent_dim = 2", "latent_dim = 3")
    (run / "config.toml").write_text(text)
    before = snapshot(run)
    err = _bad(["-q", "evaluate", str(run)], capsys)
    assert "shape" in err and snapshot(run) == before


def test_bad_config_key_and_value(tmp_path, capsys):
    _bad(["-q", "train", "--set", "latnet_dim=3", "--out", str(tmp_path / "r")], capsys)
    _bad(["-q", "train", "--set", "epochs=many", "--out", str(tmp_path / "r")], capsys)
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = [")
    _bad(["-q", "train", "--config", str(bad), "--out", str(tmp_path / "r")], capsys)
    assert not (tmp_path / "r").exists()


def test_resume_may_not_change_the_model(trained, capsys):
    err = _bad(["-q", "train", "--resume", str(trained), "--latent-dim", "5"], capsys)
    assert "latent_dim" in err


def test_resume_to_fewer_epochs_than_trained_is_one_clear_error(trained, capsys):
    # it used to train nothing, say nothing, and rewrite config.toml to the smaller epochs beside 2 metrics rows
    before = snapshot(trained)
    err = _bad(["-q", "train", "--resume", str(trained), "--epochs", "1"], capsys)
    assert "has trained 2 epochs already" in err and "give epochs >= 2" in err
    assert snapshot(trained) == before  # config.toml still says epochs = 2; nothing else touched
    import vaelab

    with pytest.raises(vaelab.VaelabError, match="has trained 2 epochs already; resuming with epochs = 1"):
        vaelab.train(resume=trained, epochs=1, finish=False, log=lambda s: None)
    assert snapshot(trained) == before and "epochs = 2\n" in (trained / "config.toml").read_text()
