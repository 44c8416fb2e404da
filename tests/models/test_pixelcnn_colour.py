"""Colour PixelCNN and PixelVAE (van den Oord et al. 2016, "Pixel Recurrent Neural Networks" section 3.4): pixels in
raster order, R then G then B within a pixel. The autoregressive property by autograd, log p(x) against the
conditionals fed one partial image at a time and against all images enumerated, sampling by chi-square, the cache
against the full network, and colour runs end to end."""

import itertools
import math

import pytest
import torch
from bounds_by_hand import bounds
from clitools import expect_error
from scipy.stats import chisquare

import vaelab
from vaelab import api, models
from vaelab.config import schema as cfg
from vaelab.models.pixel.context import RowContext
from vaelab.models.pixel.layers import GatedPixelCNN, centre_mask, colour_groups
from vaelab.models.pixel.pixelcnn import PixelCNN
from vaelab.models.pixel.sampling import sample_images
from vaelab.runs import inputs, loading

P_MIN = 1e-3  # chi-square: a correct sampler fails one run in a thousand (fixed seeds: never, in practice)


def _randomise(module: torch.nn.Module, std: float = 0.5, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _colour_net(context: int = 0, n_out: int = 2, hw: tuple[int, int] = (3, 3)) -> GatedPixelCNN:
    """3 colours, kernel 5 and 2 layers on a 3x3 image: every earlier pixel is within reach; 4 channels per colour
    group, so the output's ReLUs leave each group a live path (with 2 they can cut one off for a given x)."""
    cond = 4 if context else 0
    net = GatedPixelCNN(channels=12, layers=2, kernel=5, n_out=n_out, cond_channels=cond, colours=3,
                        context=RowContext(hw, context, cond, 3) if context else None)
    _randomise(net)
    return net


def _jacobian_pattern(net: GatedPixelCNN, hw: tuple[int, int], inputs: int = 3) -> torch.Tensor:
    """(C*H*W, C*H*W) booleans: entry [(c, i), (c', j)] says whether channel c's logits at pixel i depend on x's
    channel c' at pixel j for any of `inputs` random images (both indexed in the autoregressive order,
    position-major: i * C + c)."""
    colours, (h, w), n_out = net.colours, hw, net.n_out
    pattern = torch.zeros(colours * h * w, colours * h * w, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    for _ in range(inputs):
        x = torch.rand(1, colours, h, w, generator=g).requires_grad_()
        out = net(x)  # (1, C*n_out, H, W)
        for i in range(h * w):
            for c in range(colours):
                logits = out[0, c * n_out:(c + 1) * n_out, i // w, i % w]
                (grad,) = torch.autograd.grad(logits.sum(), x, retain_graph=True)
                pattern[i * colours + c] |= grad[0].permute(1, 2, 0).reshape(-1) != 0  # (H*W*C,) position-major
    return pattern


def _allowed(colours: int, pixels: int) -> torch.Tensor:
    """[(c, i), (c', j)]: (j, c') strictly before (i, c) in the order raster pixel, then channel."""
    n = colours * pixels
    return torch.arange(n)[None, :] < torch.arange(n)[:, None]


@pytest.mark.parametrize("context", [0, 6])
def test_channel_c_of_pixel_i_reads_exactly_what_comes_before_it(context):
    net = _colour_net(context)
    pattern = _jacobian_pattern(net, (3, 3))
    allowed = _allowed(3, 9)
    assert not (pattern & ~allowed).any(), torch.nonzero(pattern & ~allowed)[:5]
    # the allowed pairs are heard (everything is within reach here), so the check has something to see: within a
    # pixel, G reads R, B reads R and G; R reads nothing of its own pixel. The output's ReLUs can cut a pair off
    # for one x (hence three images); the row context's map shifts them, so there a pair or two may stay cut
    if context:
        assert int(pattern.sum()) >= 0.97 * int(allowed.sum())
    else:
        assert torch.equal(pattern, allowed)


@pytest.mark.parametrize("mutation", ["type A sees its own channel", "O_2 unmasked", "h_out unmasked"])
def test_the_check_catches_a_channel_that_sees_itself_or_later_ones(mutation):
    net = _colour_net()
    with torch.no_grad():
        if mutation == "type A sees its own channel":
            net.layers[0].h.mask[:, :, 0, -1] = centre_mask(colour_groups(12, 3).repeat(2), torch.arange(3), "B")
        elif mutation == "O_2 unmasked":
            net.out[3].colour_mask.fill_(1.0)
        else:
            net.layers[1].h_out.colour_mask.fill_(1.0)
    assert (_jacobian_pattern(net, (3, 3)) & ~_allowed(3, 9)).any()


def _conditional_by_hand(logits: torch.Tensor, value: float, kind: str) -> torch.Tensor:
    """log p(value) from one step's logits (n_out,), written out: log sigmoid, or log softmax at the level."""
    if kind == "bernoulli":
        return torch.nn.functional.logsigmoid(logits[0] if value == 1.0 else -logits[0])
    return logits[round(value * 255)] - torch.logsumexp(logits, 0)


@pytest.mark.parametrize("kind,context", [("bernoulli", 0), ("bernoulli", 5), ("categorical", 0)])
def test_log_prob_is_the_sum_of_conditionals_fed_one_partial_image_at_a_time(kind, context):
    model = PixelCNN((2, 2), channels=6, layers=2, kernel=3, likelihood=kind, context=context, colours=3).double()
    _randomise(model, std=0.4, seed=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (3, 2, 2), generator=g).double() if kind == "bernoulli" else \
        torch.randint(0, 256, (3, 2, 2), generator=g).double() / 255
    n_out = model.net.n_out
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for i in range(4):
            for c in range(3):
                # the entries before (i, c) from x, every later entry noise: only the former may matter
                partial = torch.rand(1, 3, 2, 2, generator=g, dtype=torch.float64)
                partial = (partial > 0.5).double() if kind == "bernoulli" else partial
                flat, known = partial.view(3, 4), x.view(3, 4)
                flat[:, :i] = known[:, :i]
                flat[:c, i] = known[:c, i]
                step = model.net(partial)[0, c * n_out:(c + 1) * n_out, i // 2, i % 2]
                total = total + _conditional_by_hand(step, float(known[c, i]), kind)
        exact = model.log_prob(x.reshape(1, -1))
    # log_prob reads the logits in float32 (as evaluation does): agreement to float32 rounding
    assert exact.shape == (1,) and float(exact[0]) == pytest.approx(float(total), abs=1e-5)


def _all_binary(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


def test_log_prob_sums_to_one_over_all_binary_2x2_colour_images():
    model = PixelCNN((2, 2), channels=6, layers=2, kernel=3, context=5, colours=3)
    _randomise(model, seed=2)
    with torch.no_grad():
        p = model.log_prob(_all_binary(12)).double().exp()  # (4096,): every image, flat (C, H, W)
    assert abs(float(p.sum()) - 1.0) < 1e-5
    assert float(p.max() / p.min()) > 2  # far from uniform: the sum is not 1 by symmetry


def _chi_square(draws: torch.Tensor, probs: torch.Tensor) -> float:
    """p-value of the draws' counts over the 64 binary (3, 1, 2) images against probs (64,)."""
    code = (draws * 2.0 ** torch.arange(5, -1, -1.0)).sum(-1).long()  # the order of _all_binary(6)
    counts = torch.bincount(code, minlength=64).double()
    return float(chisquare(counts.numpy(), (probs / probs.sum() * len(draws)).numpy()).pvalue)


def test_colour_samples_match_the_model():
    # 4 channels per colour group, weights whose within-pixel dependence is strong: drawing G before R is set
    # (one pass per pixel instead of one per channel) fails this test (p ~ 1e-195)
    model = PixelCNN((1, 2), channels=12, layers=2, kernel=3, colours=3)
    _randomise(model, seed=5)
    with torch.no_grad():
        probs = model.log_prob(_all_binary(6)).double().exp()  # (64,)
        draws = model.sample(20_000, torch.Generator().manual_seed(0))  # (20000, 6)
    assert draws.shape == (20_000, 6) and _chi_square(draws, probs) > P_MIN
    other = PixelCNN((1, 2), channels=6, layers=2, kernel=3, colours=3)  # power: another model's probabilities
    _randomise(other, seed=4)
    with torch.no_grad():
        assert _chi_square(draws, other.log_prob(_all_binary(6)).double().exp()) < 1e-6


@pytest.mark.parametrize("kind,n_out,context", [("bernoulli", 1, 0), ("categorical", 256, 0), ("bernoulli", 1, 10)])
def test_cached_colour_sampling_computes_the_full_networks_logits(kind, n_out, context):
    # each step's logits (channel c of pixel i, from the partial image) equal one full pass over the finished image
    cond = 4 if context else 3
    net = GatedPixelCNN(channels=8, layers=3, kernel=5, n_out=n_out, cond_channels=cond, colours=3,
                        context=RowContext((5, 6), context, cond, 3) if context else None)
    _randomise(net, std=0.3)
    c = torch.randn(4, cond, 5, 6)
    logits = torch.zeros(4, 3 * n_out, 5, 6)
    x = sample_images(net, 4, (5, 6), kind, c, torch.Generator().manual_seed(0), False, logits)
    with torch.no_grad():
        full = net(x.reshape(4, 3, 5, 6), c)
    assert torch.allclose(logits, full, atol=1e-5), float((logits - full).abs().max())


def test_colour_pixel_vae_decoder_is_normalised_at_fixed_z():
    torch.manual_seed(0)
    model = models.build(cfg.Config(model="pixel-vae", latent_dim=1, pixel_channels=6, pixel_layers=2, pixel_kernel=3,
                                    hidden=(16,)), (3, 1, 2)).eval()
    _randomise(model.decoder, std=0.7)
    z = torch.tensor([[-2.0], [1.5]])
    with torch.no_grad():
        p = model.decode(z).log_prob(_all_binary(6)[:, None]).double().exp()  # (64, 2)
        draws = model.decode(z[1]).sample((20_000,), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(p.sum(0), torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert float((p[:, 0] - p[:, 1]).abs().max()) > 0.05  # z reaches the colour stacks
    assert _chi_square(draws, p[:, 1]) > P_MIN


TINY = dict(pixel_channels=6, pixel_layers=2, pixel_kernel=3, hidden=(16,))


@pytest.mark.precision(kind="auto")  # auto trains; the independent answer is computed in fp32, as evaluation is
@pytest.mark.parametrize("model", ["pixelcnn", "pixel-vae"])
def test_colour_runs_train_and_evaluate_on_photo_patches(tmp_path, model):
    run = vaelab.train(data="photo-patches", model=model, epochs=1, latent_dim=2, batch_size=128, eval_k=3,
                       out=tmp_path / "r", explorer=False, log=lambda s: None, **TINY)
    result = api.evaluate(run, k=3, write=False)
    c, net = loading.load_model(run)
    x = inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu"))  # (416, 192), seeded binarization
    assert x.shape[1] == 192 and set(x.unique().tolist()) == {0.0, 1.0}
    if model == "pixelcnn":
        with torch.no_grad():
            nll = -float(net.log_prob(x).double().mean())
        assert result["nll"] == pytest.approx(nll, abs=1e-4)
        assert result["bits_per_dim"] == pytest.approx(nll / (192 * math.log(2)), rel=1e-9)
    else:
        hand = bounds(net, x, 3)  # independent draws through the model's distributions (no vaelab estimator)
        assert abs(result["elbo"] - float(hand.elbo.mean())) < hand.elbo_tol
        assert abs(result["iwae"] - float(hand.iwae.mean())) < hand.iwae_tol
        assert 0 < -result["elbo"] < 192 * math.log(2)  # better than a coin per pixel and channel
    samples = api.sample(net, 3, seed=0)
    assert samples.shape == (3, 3, 8, 8) and set(samples.unique().tolist()) <= {0.0, 1.0}


def test_too_few_pixel_channels_for_the_colours_exit_2(tmp_path, capsys):
    out = tmp_path / "run"
    err = expect_error(["train", "--data", "photo-patches", "--model", "pixelcnn", "--set", "pixel_channels=2",
                        "--out", str(out)], capsys)
    assert "pixel_channels >= 3" in err and not out.exists()
