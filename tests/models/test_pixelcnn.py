"""PixelCNN: causal masks (autograd), a normalised log p(x) (all images enumerated), sampling that matches it."""

import itertools

import pytest
import torch
from scipy.stats import chisquare

from vaelab import models
from vaelab.config import schema as cfg
from vaelab.models.pixel.context import RowContext
from vaelab.models.pixel.layers import GatedPixelCNN, HorizontalConv
from vaelab.models.pixel.pixelcnn import PixelCNN
from vaelab.models.pixel.sampling import sample_images

P_MIN = 1e-3  # chi-square tests: a correct sampler fails one run in a thousand (fixed seeds: never, in practice)


def _randomise(module: torch.nn.Module, std: float = 0.5, seed: int = 0) -> None:
    """Larger random weights, so every conditional is far from 1/2 and the checks below have something to see."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _hidden_states(net: GatedPixelCNN, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's horizontal output, every vertical message, and the logits, each (B, C, H, W)."""
    c = net.condition(x, None)  # the row context's map, or None
    messages = net.vertical(x, c)
    states, h = list(messages), x
    for layer, m in zip(net.layers, messages):
        h = layer.horizontal(h, m, c)
        states.append(h)
    return states + [net(x)]


def _dependence(out: torch.Tensor, x: torch.Tensor, i: int, width: int) -> torch.Tensor:
    """|d out[..., pixel i] / d x| over the input pixels in raster order, (H*W,)."""
    r, c = divmod(i, width)
    (g,) = torch.autograd.grad(out[0, :, r, c].sum(), x, retain_graph=True)
    return g[0, 0].abs().flatten()


def _net(kernel: int, context: int, hw: tuple[int, int], cond: int = 0, **kw) -> GatedPixelCNN:
    """A small Gated PixelCNN, with a row context of `context` hidden units when it is not 0."""
    cond = cond or (3 if context else 0)
    return GatedPixelCNN(kernel=kernel, cond_channels=cond,
                         context=RowContext(hw, context, cond) if context else None, **kw)


@pytest.mark.parametrize("kernel,context", [(3, 0), (5, 0), (3, 32)])
def test_every_layer_is_causal_in_raster_order(kernel, context):
    torch.manual_seed(0)
    h, w = 5, 6
    net = _net(kernel, context, (h, w), channels=4, layers=3, n_out=2)
    _randomise(net)
    x = torch.rand(1, 1, h, w, requires_grad=True)
    states = _hidden_states(net, x)
    if context:  # the map itself: row r hears rows < r only, and (32 units, 4 cuts) every one of them
        m = net.condition(x, None)
        for i in range(h * w):
            dep = _dependence(m, x, i, w)
            row_start = (i // w) * w
            assert torch.count_nonzero(dep[row_start:]) == 0 and torch.count_nonzero(dep[:row_start]) == row_start
    n_msg = len(net.layers)
    for s, state in enumerate(states):
        for i in range(h * w):
            dep = _dependence(state, x, i, w)
            if s < n_msg:  # a vertical message at row r may only hear rows < r
                row_start = (i // w) * w
                assert torch.count_nonzero(dep[row_start:]) == 0, (s, i)
            else:  # horizontal outputs and the logits: only pixels before i
                assert torch.count_nonzero(dep[i:]) == 0, (s, i)
    # ...and no blind spot: the logits at (4, 2) hear every pixel before them (all within reach here)
    dep = _dependence(states[-1], x, 4 * w + 2, w)
    assert torch.count_nonzero(dep[: 4 * w + 2]) == 4 * w + 2


def test_the_causality_check_catches_a_type_b_first_layer():
    torch.manual_seed(0)
    net = GatedPixelCNN(channels=4, layers=2, kernel=3, n_out=1)
    _randomise(net)
    net.layers[0].h.mask.fill_(1.0)  # the mistake: layer 0 sees the pixel it predicts
    x = torch.rand(1, 1, 3, 3, requires_grad=True)
    assert _dependence(net(x), x, 4, 3)[4] > 0


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_horizontal_masks(mask_type):
    torch.manual_seed(0)
    conv = HorizontalConv(1, 3, 5, mask_type)
    _randomise(conv)
    x = torch.rand(1, 1, 3, 7, requires_grad=True)
    out = conv(x)
    for i in range(3 * 7):
        dep = _dependence(out, x, i, 7)
        r, c = divmod(i, 7)
        allowed = [r * 7 + j for j in range(max(0, c - 2), c + (mask_type == "B"))]
        assert torch.count_nonzero(dep) == len(allowed) and all(dep[j] > 0 for j in allowed), (i, dep)


def _all_binary(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


@pytest.mark.parametrize("kernel,layers,context", [(3, 1, 0), (3, 3, 0), (5, 2, 0), (3, 2, 5)])
def test_log_prob_sums_to_one_over_all_binary_2x2_images(kernel, layers, context):
    model = PixelCNN((2, 2), channels=6, layers=layers, kernel=kernel, context=context)
    _randomise(model, seed=kernel + layers)
    with torch.no_grad():
        p = model.log_prob(_all_binary(4)).double().exp()  # (16,)
    assert abs(float(p.sum()) - 1.0) < 1e-5
    assert float(p.max() / p.min()) > 2  # far from uniform: the sum is not 1 by symmetry


def test_categorical_log_prob_sums_to_one_over_all_1x2_grey_images():
    model = PixelCNN((1, 2), channels=6, layers=2, kernel=3, likelihood="categorical").double()
    _randomise(model, std=0.3)
    levels = torch.arange(256, dtype=torch.float64) / 255
    x = torch.cartesian_prod(levels, levels)  # (65536, 2): every image
    with torch.no_grad():
        p = model.log_prob(x).exp()
    assert abs(float(p.sum()) - 1.0) < 1e-5
    assert float(p.max() / p.min()) > 2


def _chi_square(draws: torch.Tensor, probs: torch.Tensor) -> float:
    """p-value of the draws' counts over the 16 binary 2x2 images against probs (16,)."""
    code = (draws * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(-1).long()  # raster order, as _all_binary
    counts = torch.bincount(code, minlength=16).double()
    expected = probs / probs.sum() * len(draws)  # sums to 1 within 1e-7 (float32); scipy wants equal totals
    return float(chisquare(counts.numpy(), expected.numpy()).pvalue)


@pytest.mark.parametrize("context", [0, 5])
def test_samples_match_the_model_on_2x2_images(context):
    model = PixelCNN((2, 2), channels=6, layers=2, kernel=3, context=context)
    _randomise(model, seed=3)
    with torch.no_grad():
        probs = model.log_prob(_all_binary(4)).double().exp()
        draws = model.sample(20_000, torch.Generator().manual_seed(0))
    assert _chi_square(draws, probs) > P_MIN
    # the test has power: the same draws against another model's probabilities fail it
    other = PixelCNN((2, 2), channels=6, layers=2, kernel=3)
    _randomise(other, seed=4)
    with torch.no_grad():
        assert _chi_square(draws, other.log_prob(_all_binary(4)).double().exp()) < 1e-6


def test_sampling_is_seeded():
    model = PixelCNN((4, 4), channels=4, layers=2, kernel=3)
    a = model.sample(8, torch.Generator().manual_seed(1))
    b = model.sample(8, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, model.sample(8, torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("kind,n_out,context", [("bernoulli", 1, 0), ("categorical", 256, 0), ("bernoulli", 1, 10)])
def test_cached_sampling_computes_the_full_networks_logits(kind, n_out, context):
    # each step's logits, from the partial image, equal one full pass over the finished image
    net = _net(5, context, (7, 9), cond=3, channels=6, layers=3, n_out=n_out)
    _randomise(net, std=0.3)
    cond = torch.randn(4, 3, 7, 9)
    logits = torch.zeros(4, n_out, 7, 9)
    x = sample_images(net, 4, (7, 9), kind, cond, torch.Generator().manual_seed(0), False, logits)
    with torch.no_grad():
        full = net(x.reshape(4, 1, 7, 9), cond)
    assert torch.allclose(logits, full, atol=1e-5), float((logits - full).abs().max())


def test_registry_builds_the_configured_sizes():
    c = cfg.Config(model="pixelcnn", pixel_channels=7, pixel_layers=4, pixel_kernel=5)
    model = models.build(c, (1, 28, 28))
    assert models.is_exact(model) and not models.is_latent_variable(model)
    assert len(model.net.layers) == 4 and model.net.layers[1].h_out.out_channels == 7
    assert model.net.layers[0].v.kernel_size == (3, 5) and model.net.reach == 1 + 4 * 2
    assert models.estimator_for(c) == "exact" and model.net.context is None
    # the row context: a map of as many channels as the stacks (PixelCNN) or as m(z) (the PixelVAE's decoder)
    c = cfg.Config(model="pixelcnn", pixel_channels=7, pixel_layers=2, pixel_kernel=3, pixel_context=12)
    net = models.build(c, (1, 28, 28)).net
    assert net.context.inp.out_features == 12 and net.context.channels == net.layers[0].cond_v.in_channels == 7
    vae = models.build(cfg.Config(model="pixel-vae", pixel_context=12), (1, 28, 28))
    assert vae.decoder.pixel.context.channels == vae.decoder.cond_channels
