"""The convolutional HVAE's gated networks: the gate's orientation, leading dimensions, and every pixel in reach."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaelab.models.gated_conv import GatedConvDecoder, GatedConvEncoder, gated

SHAPE = (1, 12, 8)  # sides divide by 4, and differ, so a swapped H and W would fail


def test_the_gate_is_the_first_half_times_the_sigmoid_of_the_second():
    torch.manual_seed(0)
    layer = gated(3, 5)
    x = torch.randn(2, 3, 6, 6)
    w, b = layer.conv.weight.detach(), layer.conv.bias.detach()  # (10, 3, 3, 3), (10,)
    a = F.conv2d(x, w[:5], b[:5], padding=1)
    with torch.no_grad():
        layer.conv.bias[5:] = 30.0  # the gate open: the output is the first half's convolution
        layer.conv.weight[5:] = 0.0
        assert torch.allclose(layer(x), a, atol=1e-6)
        layer.conv.bias[5:] = -30.0  # shut: zero
        assert layer(x).abs().max() < 1e-11
        layer.conv.bias[5:] = 0.0  # half open: a / 2
        assert torch.allclose(layer(x), a / 2, atol=1e-6)


def test_leading_dimensions_are_kept_and_each_row_is_its_own_image():
    torch.manual_seed(0)
    enc, dec = GatedConvEncoder(SHAPE, 7).eval(), GatedConvDecoder(5, SHAPE).eval()
    x, z = torch.rand(3, 4, 96), torch.randn(3, 4, 5)  # (K, B, D), (K, B, Dz)
    with torch.no_grad():
        assert torch.allclose(enc(x), torch.stack([enc(xk) for xk in x]), atol=1e-6)
        out = dec(z)
        assert out.shape == (3, 4, 96)
        assert torch.allclose(out[1, 2], dec(z[1, 2:3])[0], atol=1e-6)


def test_the_encoder_reads_every_pixel_and_the_decoder_writes_every_pixel_from_every_latent():
    torch.manual_seed(0)
    enc, dec = GatedConvEncoder(SHAPE, 4), GatedConvDecoder(3, SHAPE)
    x = torch.rand(96, requires_grad=True)
    enc(x).sum().backward()
    assert (x.grad != 0).all()  # no pixel, last row or column included, falls outside the strided stack
    jac = torch.autograd.functional.jacobian(dec, torch.randn(3))  # (96, 3)
    assert (jac.abs().sum(1) > 0).all() and (jac.abs().sum(0) > 0).all()
