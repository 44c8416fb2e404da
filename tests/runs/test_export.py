"""vaelab export: the TorchScript file run in a fresh process and the ONNX file run in onnxruntime give the
PyTorch model's numbers (max abs diff <= 1e-5) at a batch size other than the one traced; what cannot be
exported is one error line, exit 2, nothing written."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from clitools import expect_error

from vaelab import api, models
from vaelab.cli.main import run as cli
from vaelab.runs import export, loading

TOL = 1e-5
FAST = ["--hidden", "32", "--batch-size", "128", "--device", "cpu", "--eval-k", "5", "--no-report", "--no-explorer"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, flags in (("vae", ["--model", "vae", "--latent-dim", "3"]),
                        ("conv-vae", ["--model", "conv-vae", "--latent-dim", "2"]),
                        ("ae", ["--model", "ae", "--latent-dim", "2"])):
        out[name] = root / name
        assert cli(["-q", "train", "--epochs", "1", "--out", str(out[name]), *FAST, *flags]) == 0
    return out


def _inputs(model, part, n=5):
    """n inputs other than the traced ones: z from the prior, or x in [0, 1]."""
    g = torch.Generator().manual_seed(3)
    if part == "decoder":
        return model.sample_latent(n, g) if hasattr(model, "sample_latent") else torch.randn(n, model.latent_dim,
                                                                                            generator=g)
    return torch.rand(n, model.data_dim, generator=g)


@torch.no_grad()
def _expected(model, part, x):
    """The PyTorch model's own numbers, from its distributions (not from export's graphs)."""
    if part == "decoder":
        return [model.decode(x).mean]
    if not hasattr(model, "encode"):
        return [model.embed(x)]
    q = model.encode(x)
    return [q.base_dist.loc, q.base_dist.scale]


FRESH = """
import sys, numpy as np, torch
m = torch.jit.load(sys.argv[1])
out = m(torch.from_numpy(np.load(sys.argv[2])))
out = out if isinstance(out, tuple) else (out,)
np.savez(sys.argv[3], *[o.numpy() for o in out])  # no grad: plain arrays
"""


@pytest.mark.precision(kind="fp32")
@pytest.mark.parametrize("name,part", [("vae", "decoder"), ("vae", "encoder"), ("conv-vae", "decoder"),
                                       ("conv-vae", "encoder"), ("ae", "encoder"), ("ae", "decoder")])
def test_torchscript_in_a_fresh_process_matches_the_model(runs, tmp_path, name, part):
    run = runs[name]
    assert cli(["-q", "export", str(run), "--format", "torchscript", "--part", part]) == 0
    path = run / "export" / f"{part}.pt"
    _, model = loading.load_model(run)
    x = _inputs(model, part)
    np.save(tmp_path / "in.npy", x.numpy())
    # a fresh interpreter that imports torch and numpy only: the file stands alone
    subprocess.run([sys.executable, "-c", FRESH, str(path), str(tmp_path / "in.npy"), str(tmp_path / "out.npz")],
                   check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    got = np.load(tmp_path / "out.npz")
    want = _expected(model, part, x)
    assert len(got.files) == len(want)
    for i, w in enumerate(want):
        assert got[f"arr_{i}"].shape == tuple(w.shape)
        assert np.abs(got[f"arr_{i}"] - w.numpy()).max() <= TOL
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["inputs"][0]["shape"] == ["N", x.shape[1]] and info["part"] == part
    assert info["outputs"][0]["shape"] == ["N", want[0].shape[1]]


@pytest.mark.precision(kind="fp32")
@pytest.mark.parametrize("name,part", [("vae", "decoder"), ("conv-vae", "decoder"), ("conv-vae", "encoder")])
def test_onnx_in_onnxruntime_matches_the_model(runs, tmp_path, name, part):
    ort = pytest.importorskip("onnxruntime")  # the [export] extra
    run = runs[name]
    out = tmp_path / f"{name}-{part}.onnx"
    assert cli(["-q", "export", str(run), "--format", "onnx", "--part", part, "--out", str(out)]) == 0
    _, model = loading.load_model(run)
    x = _inputs(model, part, n=7)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    want = _expected(model, part, x)
    assert [o.name for o in session.get_outputs()] == (["mean"] if part == "decoder" else ["loc", "scale"])
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and np.abs(g - w.numpy()).max() <= TOL


def test_what_has_no_graph_is_refused_before_anything_is_written(runs, tmp_path, capsys):
    pixel = models.build(api.make_config(model="pixel-vae", latent_dim=2), (1, 8, 8))
    with pytest.raises(Exception, match="autoregressive"):
        export.graph(pixel, "decoder")
    export.graph(pixel, "encoder")  # its encoder is an ordinary one
    flow = models.build(api.make_config(model="vae", flow="planar", latent_dim=2), (64,))
    with pytest.raises(Exception, match="flow"):
        export.graph(flow, "encoder")
    pixelcnn = models.build(api.make_config(model="pixelcnn"), (1, 8, 8))
    with pytest.raises(Exception, match="no latent"):
        export.graph(pixelcnn, "decoder")
    assert "not a vaelab run folder" in expect_error(["export", str(tmp_path), "--format", "onnx"], capsys)
    assert not any(tmp_path.iterdir())
    (tmp_path / "dir.pt").mkdir()
    before = sorted(runs["vae"].rglob("*"))
    assert "is a folder" in expect_error(["export", str(runs["vae"]), "--format", "torchscript", "--out",
                                          str(tmp_path / "dir.pt")], capsys)
    assert sorted(runs["vae"].rglob("*")) == before
    assert "beside it" in expect_error(["export", str(runs["vae"]), "--format", "onnx", "--out",
                                        str(tmp_path / "m.json")], capsys)
    assert not (tmp_path / "m.json").exists()


def test_onnx_without_the_onnx_package_is_one_clear_line(runs, monkeypatch, capsys):
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    before = sorted(runs["vae"].rglob("*"))
    assert "vaelab[export]" in expect_error(["export", str(runs["vae"]), "--format", "onnx"], capsys)
    assert sorted(runs["vae"].rglob("*")) == before


@pytest.mark.precision(kind="fp32")
def test_a_conditional_decoder_takes_z_and_its_label(tmp_path):
    run = tmp_path / "cvae"
    assert cli(["-q", "train", "--conditional", "--epochs", "1", "--latent-dim", "2", "--out", str(run), *FAST]) == 0
    _, model = loading.load_model(run)
    z = _inputs(model, "decoder", n=6)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 9, 9]), 10).float()
    with torch.no_grad():
        want = model.decode(z, y).mean
    out = tmp_path / "dec.pt"
    assert cli(["-q", "export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    assert torch.jit.load(str(out))(z, y).sub(want).abs().max() <= TOL
    ort = pytest.importorskip("onnxruntime")
    assert cli(["-q", "export", str(run), "--format", "onnx", "--out", str(tmp_path / "dec.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "dec.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "y"]
    got = session.run(None, {"z": z.numpy(), "y": y.numpy()})[0]
    assert np.abs(got - want.numpy()).max() <= TOL
    assert json.loads((tmp_path / "dec.json").read_text())["inputs"][1]["shape"] == ["N", 10]
