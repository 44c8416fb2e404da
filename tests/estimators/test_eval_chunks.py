"""Evaluation numbers depend on the weights, k and the seed, never on --batch or the chunk sizes; fp32 by default.

Every run here trains in fp32 (pinned: the property is about evaluation, and fp32 keeps the runs fast on a CPU
that emulates bfloat16); evaluation runs in its own default, fp32, unless a test asks for bf16.
"""

import json

import numpy as np
import pytest
import torch
from scipy import stats

import vaelab
from vaelab.distributions import families
from vaelab.estimators import evaluation
from vaelab.models.vae import VAE
from vaelab.reports import compare
from vaelab.runtime import split_noise as noise
from vaelab.runtime import streams

pytestmark = pytest.mark.precision(kind="fp32")  # training pinned, evaluation in its default
SMALL = dict(data="digits", hidden=(32,), latent_dim=3, batch_size=64, device="cpu", precision="fp32",
             finish=False, log=lambda s: None)
# relative: float32 rounding of matrix products with other row counts (estimators/evaluation.py's docstring)
BOUND = 1e-6
U64 = (1 << 64) - 1


def _mix(z: int) -> int:  # SplitMix64's finaliser on exact Python integers
    z = ((z ^ (z >> 30)) * streams.MIX[0]) & U64
    z = ((z ^ (z >> 27)) * streams.MIX[1]) & U64
    return z ^ (z >> 31)


def test_the_streams_are_splitmix64_in_exact_integer_arithmetic():
    keys = [0, 1, 2**63, U64, 0x0123456789ABCDEF, 2**62 + 12345]
    index = [0, 5, 2**40, 7, 3, 2**31 - 1]
    got = streams.split(torch.tensor([streams._signed(k) for k in keys]), torch.tensor(index))
    expected = [streams._signed(_mix((k + (i + 1) * streams.GAMMA) & U64)) for k, i in zip(keys, index)]
    assert got.tolist() == expected  # int64 wrap-around and logical shifts agree with the exact integers
    assert [streams._signed(streams.split_int(k, i)) for k, i in zip(keys, index)] == expected  # the scalar twin
    u = streams.uniform(torch.tensor([streams._signed(0), streams._signed(U64)]))
    assert u.tolist() == [0.5 * 2.0 ** -53, 1 - 0.5 * 2.0 ** -53]  # (m + 1/2) / 2^53: never 0 or 1


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "logistic", "student-t", "gumbel"])
def test_a_draw_depends_on_seed_point_and_sample_only(kind):
    loc, scale = torch.randn(11, 3), torch.rand(11, 3) + 0.5
    with streams.block(5, 0, 0):
        whole = noise.rsample(families.location_scale(kind, loc, scale), 9)  # (9, 11, 3)
    pieces = torch.empty_like(whole)
    for lo in range(0, 11, 4):  # 4 points and 2 samples a chunk
        q = families.location_scale(kind, loc[lo:lo + 4], scale[lo:lo + 4])
        for s in range(0, 9, 2):
            with streams.block(5, lo, s):
                pieces[s:s + 2, lo:lo + 4] = noise.rsample(q, min(2, 9 - s))
    assert torch.equal(whole, pieces)
    with streams.block(6, 0, 0):  # another seed: other draws
        assert not torch.equal(noise.rsample(families.location_scale(kind, loc, scale), 9), whole)


@pytest.mark.parametrize("kind, law", [("gaussian", stats.norm), ("laplace", stats.laplace),
                                       ("logistic", stats.logistic), ("student-t", stats.t(families.STUDENT_DF)),
                                       ("gumbel", stats.gumbel_r)])
def test_stream_draws_follow_the_family(kind, law):
    q = families.location_scale(kind, torch.full((400, 2), 1.5), torch.full((400, 2), 2.0))
    with streams.block(0, 0, 0):
        z = noise.rsample(q, 50).double()  # (50, 400, 2)
    eps = ((z - 1.5) / 2.0).flatten().numpy()
    assert stats.kstest(eps, law.cdf).pvalue > 1e-3  # 40,000 draws: a wrong law or scale fails by far
    # neighbours in the counter (coordinates, samples, points) are uncorrelated: |r| < 5 / sqrt(n)
    pairs = [(z[..., 0], z[..., 1]), (z[:-1], z[1:]), (z[:, :-1], z[:, 1:])]
    for a, b in pairs:
        r = np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]
        assert abs(r) < 5 / np.sqrt(a.numel())


def test_each_draw_of_a_block_has_its_own_stream():
    q = families.location_scale("gaussian", torch.zeros(6, 2), torch.ones(6, 2))
    with streams.block(0, 0, 0):
        first, second = noise.rsample(q, 4), noise.rsample(q, 4)  # a hierarchy's layers, drawn in turn
    assert not torch.equal(first, second)
    q2 = families.location_scale("gaussian", torch.zeros(4, 6, 2), torch.ones(4, 6, 2))  # batch (K, B)
    with streams.block(0, 0, 0):
        noise.rsample(q, 4)
        assert torch.equal(noise.rsample_each(q2), second)  # axis 0 is the sample, axis 1 the point


@pytest.mark.parametrize("model", [dict(), dict(model="hvae", latent_dim=(3, 2)), dict(flow="iaf")])
def test_evaluation_does_not_depend_on_batch_or_chunks(tmp_path, model, monkeypatch):
    run = vaelab.train(out=tmp_path / "r", epochs=1, **(SMALL | model))
    keys = ("elbo", "iwae", "nll", "recon", "kl")
    runs = {b: vaelab.evaluate(run, k=200, batch=b, write=False) for b in (None, 1, 7, 64, 500)}  # None: from memory
    monkeypatch.setattr(evaluation, "CHUNK_ELEMENTS", 1 << 12)  # tiny chunks: a few samples at a time
    runs["chunks"] = vaelab.evaluate(run, k=200, write=False)
    again = vaelab.evaluate(run, k=200, write=False)
    assert all(runs["chunks"][key] == again[key] for key in keys)  # the same command: the same numbers
    for b, r in runs.items():
        for key in keys:
            assert r[key] == pytest.approx(runs[None][key], rel=BOUND, abs=1e-9), (b, key)
    # the bound would catch chunk-dependent samples: other samples move the ELBO by ten times the bound or more
    seeded = evaluation.summarize(vaelab.load(run), _test_x(run), 200, seed=1)
    assert abs(seeded["elbo"] - runs[None]["elbo"]) > 10 * BOUND * abs(runs[None]["elbo"])


def _test_x(run):
    from vaelab.runs import inputs, loading
    c = loading.load_config(run)
    return inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))


def test_a_model_drawing_outside_the_streams_is_refused(tmp_path):
    class Sneaky(VAE):
        def posterior_sample(self, x, k, q=None):
            q = self.encode(x) if q is None else q
            z = q.mean + q.stddev * torch.randn(k, *q.mean.shape)  # torch's generator: depends on the chunk
            return z, q.log_prob(z)
    run = vaelab.train(out=tmp_path / "r", epochs=0, **SMALL)
    model = vaelab.load(run)
    model.__class__ = Sneaky
    with pytest.raises(RuntimeError, match="drew from torch's random generator"):
        evaluation.point_bounds(model, _test_x(run), 10)


def test_fp32_is_the_default_and_a_bf16_evaluation_is_kept_apart(tmp_path):
    run = vaelab.train(out=tmp_path / "r", epochs=2, **(SMALL | dict(precision="bf16")))
    default = vaelab.evaluate(run, k=50)  # the run trained in bf16; evaluation stays fp32
    assert default["precision"] == "fp32"
    assert default == vaelab.evaluate(run, k=50, precision="fp32") | {"seconds": default["seconds"]}
    low = vaelab.evaluate(run, k=100, precision="bf16")  # a larger k, but lower precision
    assert low["precision"] == "bf16" and low["elbo"] != default["elbo"]
    kept = {p.name: json.loads(p.read_text()) for p in (run / "evals").glob("*.json")}
    assert sorted(kept) == ["test-k100-bf16.json", "test-k50.json"]
    assert kept["test-k50.json"]["elbo"] == default["elbo"] and kept["test-k100-bf16.json"]["elbo"] == low["elbo"]
    shown = json.loads((run / "eval.json").read_text())
    assert (shown["precision"], shown["k"]) == ("fp32", 50)  # fp32 stays the headline
    (run / "evals" / "test-k50.json").unlink()
    vaelab.evaluate(run, k=100, precision="bf16")
    row = compare.run_row(run)  # only the bf16 one left: compare says so
    assert row["precision"] == "bf16" and row["nll_estimator"] == "NLL-100, bf16"
