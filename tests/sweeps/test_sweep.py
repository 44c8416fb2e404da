"""Sweeps: stacked models compute what each would alone, run folders are complete, bad input is refused."""

import copy
import json

import pytest
import torch
from bounds_by_hand import bounds
from clitools import expect_error as _bad
from clitools import refused_flag
from safetensors.torch import load_file

import vaelab
from vaelab import models
from vaelab.cli.main import run as cli
from vaelab.config import choices
from vaelab.config import schema as cfg
from vaelab.runs import inputs, loading
from vaelab.sweeps.stack import StackedAdam, stack_parameters, stacked_model
from vaelab.sweeps.sweep import groups, parse_grid, plan
from vaelab.training.loop import make_optimizer, seed_everything

SMALL = dict(data="digits", hidden=(64,), latent_dim=4, batch_size=64, lr=1e-3, device="cpu", eval_k=20)
FAST = ["--hidden", "32", "--latent-dim", "2", "--batch-size", "128", "--device", "cpu", "--eval-k", "20"]
QUIET = dict(log=lambda s: None)


def _rows(run):
    return [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]


def _built(c, seeds, shape=(1, 8, 8)):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(models.build(c, shape))
    return out


# the models stacking knows: not the hierarchies (never stacked, test_deep_cli), nor the autoregressive
# ones (sweep_stacked.check_stackable refuses them) and their 256-level categorical likelihood
@pytest.mark.parametrize(
    "name", sorted(m for m in set(models.MODELS) - {"hvae", "conv-hvae"} if not models.spec(m).images)
)
@pytest.mark.parametrize("likelihood", [k for k in choices.LIKELIHOODS if k != "categorical"])
def test_stacked_model_computes_each_models_own_numbers(name, likelihood):
    c = cfg.Config(model=name, hidden=(16,), latent_dim=3, likelihood=likelihood)
    # eval mode: dropout and batch-norm statistics (prodlda, etm) are training-time randomness that vmap refuses
    solo = [m.eval() for m in _built(c, [0, 1, 2])]
    params = stack_parameters(solo)
    x = torch.rand(3, 5, 64)  # (M, B, D)
    z = torch.randn(2, 3, 5, 3)  # (K, M, B, Dz)
    for how in ("auto", "vmap"):
        net = stacked_model(solo[0], params, how)
        lp = net.decode(z).log_prob(x)  # (K, M, B)
        code = net.embed(x)  # (M, B, Dz)
        for m in range(3):
            torch.testing.assert_close(lp[:, m], solo[m].decode(z[:, m]).log_prob(x[m]), rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(code[m], solo[m].embed(x[m]), rtol=1e-5, atol=1e-6)


def test_stacked_adam_is_torch_adam_per_model_with_its_own_lr_and_mask():
    c = cfg.Config(hidden=(16,), latent_dim=3, likelihood="gaussian-learned")
    models_ = _built(c, [0, 1, 2, 3])
    init = [copy.deepcopy(m) for m in models_]
    solo = [copy.deepcopy(m) for m in models_]
    lrs = [0.0, 1e-3, 1e-2, 1e-2]
    params = stack_parameters(models_)
    adam = StackedAdam(params, lrs, make_optimizer(models_[0], 1e-3))
    opts = [make_optimizer(m, 1e-3) for m in solo]
    for o, lr in zip(opts, lrs):
        o.param_groups[0]["lr"] = lr
    net = stacked_model(models_[0], params)
    gen = torch.Generator().manual_seed(0)
    for step in range(3):
        x, z = torch.rand(4, 5, 64, generator=gen), torch.randn(4, 5, 3, generator=gen)
        loss = -net.decode(z).log_prob(x).sum() - net.embed(x).pow(2).sum()  # deterministic, per-model separable
        adam.zero_grad()
        loss.backward()
        adam.step([True, True, True, False])  # model 3 is masked out (as after early stopping)
        for m in range(3):
            lm = -solo[m].decode(z[m]).log_prob(x[m]).sum() - solo[m].embed(x[m]).pow(2).sum()
            opts[m].zero_grad()
            lm.backward()
            opts[m].step()
    for name, p in params.items():
        assert torch.equal(p[0], dict(init[0].named_parameters())[name])  # lr = 0 keeps its initial weights
        assert torch.equal(p[3], dict(init[3].named_parameters())[name])  # masked: never touched
        assert float(adam.steps[name][3]) == 0 and float(adam.exp_avg[name][3].abs().max()) == 0
        for m in (1, 2):
            torch.testing.assert_close(p[m], dict(solo[m].named_parameters())[name], rtol=0, atol=1e-6)
    moved = [max(float((params[n][m] - q).detach().abs().max()) for n, q in init[m].named_parameters()) for m in (1, 2)]
    assert 2e-3 < moved[0] < 4e-3 and 2e-2 < moved[1] < 4e-2  # ~ lr per step, 3 steps: the rates really differ


@pytest.mark.parametrize("model, estimator, beta", [
    ("vae", "sgvb-b", 1.0), ("vae", "sgvb-b", 0.3), ("vae", "sgvb-a", 0.3), ("vae", "iwae", 1.0), ("ae", "ae", 1.0)])
def test_per_model_losses_add_up_to_the_objectives_loss(model, estimator, beta):
    # what each swept model logs as train_loss is its own share of the loss that is differentiated
    from vaelab.estimators.objectives import get
    from vaelab.sweeps.stacked import model_objectives as _model_losses

    c = cfg.Config(model=model, hidden=(16,), latent_dim=3)
    net = stacked_model(_built(c, [0])[0], stack_parameters(_built(c, [0, 1, 2])))
    bound = get(estimator)(net, torch.rand(3, 7, 64).round(), k=4 if estimator == "iwae" else 1, beta=beta)
    per_model = _model_losses(bound, beta)
    assert per_model.shape == (3,) and len(set(per_model.tolist())) == 3
    torch.testing.assert_close(per_model.mean(), bound.loss.detach(), rtol=1e-6, atol=1e-5)


def test_stacked_conditional_vaes_compute_each_models_own_numbers():
    # Sohn et al. 2015: each row carries its one-hot label after the image, xy (M, B, D + K); the decoder reads [z, y]
    c = cfg.Config(conditional=True, classes=10, hidden=(16,), latent_dim=3)
    solo = [m.eval() for m in _built(c, [0, 1, 2])]
    params = stack_parameters(solo)
    g = torch.Generator().manual_seed(0)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (3, 5), generator=g), 10).float()
    xy = torch.cat([torch.rand(3, 5, 64, generator=g).bernoulli(), y], -1)  # (M, B, 74)
    z = torch.randn(2, 3, 5, 3, generator=g)  # (K, M, B, Dz)
    for how in ("auto", "vmap"):
        net = stacked_model(solo[0], params, how)
        lp = net.log_likelihood(xy, z)  # log p(x | z, y), (K, M, B)
        code = net.embed(xy)  # E_q[z | x, y], (M, B, Dz)
        for m in range(3):
            torch.testing.assert_close(lp[:, m], solo[m].log_likelihood(xy[m], z[:, m]), rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(code[m], solo[m].embed(xy[m]), rtol=1e-5, atol=1e-6)


@pytest.mark.precision(kind="fp32")
def test_a_conditional_sweep_trains_stacked_runs_like_their_solo_runs(tmp_path, capsys):
    out = tmp_path / "sw"
    flags = ["--hidden", "32", "--latent-dim", "2", "--batch-size", "128", "--device", "cpu", "--precision", "fp32"]
    assert cli(["sweep", "--conditional", "--seeds", "2", "--epochs", "4", "--no-report", "--out", str(out),
                *flags]) == 0
    assert "stacking 2 models" in capsys.readouterr().err  # one group of two, trained as one
    for s in range(2):
        c = loading.load_config(out / f"seed{s}")
        assert c.conditional and c.classes == 10  # the width of the one-hot labels, read from the data
        solo = tmp_path / f"solo{s}"
        assert cli(["-q", "train", "--conditional", "--seed", str(s), "--epochs", "4", "--no-report", "--out",
                    str(solo), *flags]) == 0
        swept, alone = _rows(out / f"seed{s}"), _rows(solo)
        assert swept[-1]["val_elbo"] > swept[0]["val_elbo"] + 3  # it learned
        for a, b in zip(alone, swept):  # same start, data order and binarizations; only the noise differs
            assert a.keys() == b.keys() and abs(a["val_elbo"] - b["val_elbo"]) < 0.5
    ev = vaelab.evaluate(out / "seed0", k=5, write=False)
    assert ev["conditional"]["classes"] == 10 and "log p(x | y)" in ev["estimators"]["iwae"]


def test_a_grid_over_conditional_gives_each_model_its_own_data(tmp_path):
    # the conditional model reads [x, onehot(y)] (64 + 10 values), the other x alone (64): the data is not shared
    out = vaelab.sweep(grid={"conditional": [True, False]}, epochs=1, out=tmp_path / "sw", finish=False,
                       **(SMALL | dict(hidden=(16,), latent_dim=2)), **QUIET)
    cond, plain = (loading.load_config(out / f"conditional{v}") for v in ("true", "false"))
    assert (cond.conditional, cond.classes, plain.conditional, plain.classes) == (True, 10, False, 0)
    assert "conditional" in vaelab.evaluate(out / "conditionaltrue", k=5, write=False)
    assert "conditional" not in vaelab.evaluate(out / "conditionalfalse", k=5, write=False)


@pytest.mark.precision(kind="fp32")
def test_stacked_autoencoder_retraces_its_solo_run(tmp_path):
    # A plain autoencoder's objective has no noise, so a swept model sees exactly its solo run's
    # data order and binarizations: the curves agree to float rounding.
    kw = dict(SMALL, model="ae", hidden=(32,), batch_size=128, epochs=3, precision="fp32")  # stacked models: fp32
    root = vaelab.sweep(seeds=2, out=tmp_path / "sw", **kw, **QUIET)
    for s in range(2):
        solo = _rows(vaelab.train(finish=False, out=tmp_path / f"solo{s}", seed=s, **kw, **QUIET))
        swept = _rows(root / f"seed{s}")
        assert [r["epoch"] for r in swept] == [1, 2, 3]
        for a, b in zip(solo, swept):
            assert a.keys() == b.keys()
            assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-4)
            assert b["val_recon"] == pytest.approx(a["val_recon"], abs=1e-4)


@pytest.mark.precision(kind="fp32")
def test_stacked_vae_matches_its_solo_run_statistically(tmp_path):
    # Same initial weights, data order and binarizations; only the reparameterisation noise differs.
    kw = dict(SMALL, hidden=(32,), batch_size=128, epochs=8, precision="fp32")  # stacked models train in fp32
    root = vaelab.sweep(seeds=2, out=tmp_path / "sw", **kw, **QUIET)
    finals = []
    for s in range(2):
        solo = _rows(vaelab.train(finish=False, out=tmp_path / f"solo{s}", seed=s, **kw, **QUIET))
        swept = _rows(root / f"seed{s}")
        assert len(swept) == 8 and swept[-1]["val_elbo"] > swept[0]["val_elbo"] + 5  # it learned
        for a, b in zip(solo, swept):
            assert abs(a["val_elbo"] - b["val_elbo"]) < 0.5 and abs(a["train_loss"] - b["train_loss"]) < 0.5
        finals.append(swept[-1]["val_elbo"])
    assert finals[0] != finals[1]  # two seeds, two models


def test_one_seed_is_exactly_the_solo_run(tmp_path):
    root = vaelab.sweep(seeds=1, seed=4, out=tmp_path / "sw", epochs=2, **SMALL, **QUIET)
    solo = vaelab.train(finish=False, out=tmp_path / "solo", seed=4, epochs=2, **SMALL, **QUIET)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(root / "seed4")) == strip(_rows(solo))
    a, b = load_file(str(root / "seed4" / "model.safetensors")), load_file(str(solo / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("extra", [dict(model="iwae", k=3), dict(model="dae", hidden=(32, 16)),
                                   dict(posterior="logistic", prior="laplace", save_every=1),
                                   dict(likelihood="gaussian-learned", dequantize=True),
                                   dict(conditional=True)])
def test_one_seed_of_the_family_models_is_exactly_the_solo_run(tmp_path, extra):
    kw = dict(SMALL, epochs=2, **extra)
    root = vaelab.sweep(seeds=1, seed=4, out=tmp_path / "sw", **kw, **QUIET)
    solo = vaelab.train(finish=False, out=tmp_path / "solo", seed=4, **kw, **QUIET)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(root / "seed4")) == strip(_rows(solo))
    if extra.get("model") == "iwae":
        assert "val_iwae" in _rows(solo)[0] and "val_elbo" in _rows(solo)[0]
    if extra.get("save_every"):
        assert sorted(p.name for p in (root / "seed4" / "epochs").iterdir()) == sorted(
            p.name for p in (solo / "epochs").iterdir()) == ["epoch-001.safetensors", "epoch-002.safetensors"]


def test_cli_sweep_writes_complete_runs_that_evaluate_accepts(tmp_path, capsys):
    out = tmp_path / "sw"
    assert cli(["-q", "sweep", "--seeds", "2", "--epochs", "2", "--out", str(out), *FAST]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["seed0", "seed1"]
    assert all(r["group_size"] == 2 and r["epochs"] == 2 for r in summary["runs"])
    for name, seed in (("seed0", 0), ("seed1", 1)):
        run = out / name
        for f in ("config.toml", "metrics.jsonl", "model.safetensors", "checkpoint.safetensors", "eval.json",
                  "report.html", "plots/manifold.png"):
            assert (run / f).is_file(), f
        c = loading.load_config(run)
        assert c.seed == seed and c.out == str(run) and c.hidden == (32,) and c.latent_dim == 2
        rows = _rows(run)
        assert [r["epoch"] for r in rows] == [1, 2]
        assert set(rows[0]) == {"epoch", "train_loss", "train_seconds", "val_elbo"}
        assert cli(["-q", "evaluate", str(run), "--k", "30", "--precision", "fp32"]) == 0
        ev = json.loads((run / "eval.json").read_text())
        # NLL-30 of the swept model's own weights: IWAE-30 from independent draws (bounds_by_hand)
        _, model = loading.load_model(run)
        hand = bounds(model, inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu")), 30)
        assert ev["k"] == 30 and abs(ev["nll"] + float(hand.iwae.mean())) < hand.iwae_tol
    # a swept run continues alone like any other run
    assert cli(["-q", "train", "--resume", str(out / "seed1"), "--epochs", "3", "--no-report"]) == 0
    assert [r["epoch"] for r in _rows(out / "seed1")] == [1, 2, 3]


def test_grid_makes_every_config_and_groups_by_shape(tmp_path):
    root = vaelab.sweep(grid=["lr=1e-3,3e-3", "latent_dim=2,3"], out=tmp_path / "sw", epochs=1,
                        **{**SMALL, "latent_dim": 5}, **QUIET)
    summary = json.loads((root / "sweep.json").read_text())["runs"]
    names = ["lr0.001-latent_dim2", "lr0.001-latent_dim3", "lr0.003-latent_dim2", "lr0.003-latent_dim3"]
    assert [r["name"] for r in summary] == names
    for r in summary:
        c = loading.load_config(root / r["name"])
        assert (c.lr, c.latent_dim) == (r["values"]["lr"], r["values"]["latent_dim"])
        assert vaelab.load(root / r["name"]).latent_dim == c.latent_dim
    # two stacked groups, one per latent size, each holding both learning rates
    by_group = {}
    for r in summary:
        by_group.setdefault(r["group"], []).append(r["name"])
    assert sorted(by_group.values()) == [[names[0], names[2]], [names[1], names[3]]]


def test_grid_lr_really_differs_per_model(tmp_path):
    root = vaelab.sweep(grid={"lr": [1e-7, 1e-2]}, out=tmp_path / "sw", epochs=2, **{**SMALL, "lr": 1e-3}, **QUIET)
    c = cfg.from_dict(dict(SMALL))
    seed_everything(0)
    init = models.build(c, (1, 8, 8)).state_dict()
    moved = []
    for name in ("lr1e-07", "lr0.01"):
        w = load_file(str(root / name / "checkpoint.safetensors"))
        moved.append(max(float((w[f"model.{k}"] - v).abs().max()) for k, v in init.items()))
    steps = 2 * 21  # 2 epochs of ceil(1294 / 64) steps; Adam moves a weight by at most ~lr per step
    assert moved[0] < 2 * steps * 1e-7 and moved[1] > 100 * moved[0]


def test_patience_stops_one_model_while_the_other_goes_on(tmp_path):
    # a large step makes the validation bound plateau and wobble within a few epochs
    kw = {**SMALL, "hidden": (32,), "batch_size": 128, "lr": 0.1}
    root = vaelab.sweep(grid={"patience": [2, 0]}, out=tmp_path / "sw", epochs=12, **kw, **QUIET)
    stopped, full = _rows(root / "patience2"), _rows(root / "patience0")
    assert len(full) == 12 and len(stopped) < 12
    vals = [r["val_elbo"] for r in stopped]
    assert len(vals) - 1 - vals.index(max(vals)) == 2
    assert json.loads((root / "sweep.json").read_text())["runs"][0]["stopped_early"] is True


def test_plan_and_groups():
    base = cfg.Config(seed=3)
    members = plan(base, seeds=2, grid=parse_grid(["hidden=64 32,16", "model=vae,ae"]))
    assert len(members) == 8
    assert [m.name for m in members[:3]] == ["hidden64x32-modelvae-seed3", "hidden64x32-modelvae-seed4",
                                             "hidden64x32-modelae-seed3"]
    assert members[0].config.hidden == (64, 32) and members[-1].config.seed == 4
    assert groups(members) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert groups(members, sequential=True) == [[i] for i in range(8)]


@pytest.mark.parametrize("args, words", [
    (["--grid", "nope=1,2"], "unknown config key 'nope'"),
    (["--grid", "lr="], "non-empty"),
    (["--grid", "lr=1e-3,,3e-4"], "non-empty"),
    (["--grid", "lr"], "KEY=V1,V2"),
    (["--grid", "lr=1e-3,0.001"], "more than once"),
    (["--grid", "lr=0,1e-3"], "lr must be positive"),
    (["--grid", "latent_dim=two"], "bad value for latent_dim"),
    (["--grid", "out=a,b"], "out cannot be swept"),
    (["--seeds", "2", "--grid", "seed=1,2"], "not both"),
    ([], "needs seeds"),
    (["--seeds", "2", "--resume", "runs/x"], "cannot be resumed"),
    (["--seeds", "2", "--data", "cifar-99"], "unknown dataset"),
    (["--seeds", "2", "--estimator", "iwae", "--kl-warmup", "2"], "use sequential"),
])
def test_bad_sweeps_write_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "sw"
    err = _bad(["-q", "sweep", "--epochs", "1", "--out", str(out), *FAST, *args], capsys)
    assert words in err and not out.exists()


def test_zero_seeds_are_refused_as_the_flag_is_parsed(tmp_path, capsys):
    out = tmp_path / "sw"
    err = refused_flag(["-q", "sweep", "--epochs", "1", "--out", str(out), *FAST, "--seeds", "0"], capsys)
    assert "argument --seeds: must be an integer >= 1" in err and not out.exists()


def test_existing_folders_are_not_overwritten(tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["-q", "sweep", "--seeds", "2", "--epochs", "1", "--no-report", "--out", str(out), *FAST]
    assert cli(args) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert f"{out} already holds a sweep; --overwrite replaces it" in _bad(args, capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert cli([*args, "--overwrite"]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    args[args.index("--out") + 1] = str(other)
    assert "not a vaelab sweep" in _bad([*args, "--overwrite"], capsys)
    assert (other / "keep.txt").read_text() == "x" and len(list(other.iterdir())) == 1


def test_a_diverging_model_stops_and_the_others_finish(tmp_path, capsys):
    out = tmp_path / "sw"
    err = _bad(["-q", "sweep", "--grid", "lr=1e-3,1e6", "--epochs", "3", "--no-report", "--out", str(out), *FAST],
               capsys)
    assert "1 of 2 models failed (lr1e+06)" in err
    assert [r["epoch"] for r in _rows(out / "lr0.001")] == [1, 2, 3]
    summary = json.loads((out / "sweep.json").read_text())["runs"]
    assert summary[0]["diverged_at"] is None and summary[1]["diverged_at"] is not None
