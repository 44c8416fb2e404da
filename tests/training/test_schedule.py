"""Learning-rate decay: the epoch's rate is lr * lr_decay^(epoch-1),
and a resumed run keeps the schedule bit-exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab.config.schema import from_dict
from vaelab.runs.folder import epoch_weights

SMALL = dict(data="digits", hidden=(32,), latent_dim=4, batch_size=128, lr=1e-3, device="cpu", eval_k=20)


def _w(run, name):
    return torch.cat([v.flatten() for v in load_file(str(run / name)).values()])


def test_lr_decay_scales_each_epochs_steps(tmp_path):
    moved = {}
    for decay in (1.0, 1e-6):
        run = vaelab.train(out=tmp_path / f"d{decay}", epochs=2, save_every=1, lr_decay=decay, log=lambda s: None,
                           **SMALL)
        w1, w2 = _w(run, epoch_weights(1)), _w(run, epoch_weights(2))
        moved[decay] = float((w2 - w1).abs().max())
    assert moved[1.0] > 1e-3  # epoch 2 at the full rate moves the weights
    assert moved[1e-6] < 1e-6  # at a millionth of it (Adam's steps are ~lr each, ~11 steps), they stay put


@pytest.mark.precision(kind="auto")  # exact values in whatever precision auto picks here (runs compared alike)
def test_resume_keeps_the_decayed_rate(tmp_path):
    whole = vaelab.train(out=tmp_path / "whole", epochs=3, lr_decay=0.5, log=lambda s: None, **SMALL)
    part = vaelab.train(out=tmp_path / "part", epochs=2, lr_decay=0.5, log=lambda s: None, **SMALL)
    vaelab.train(out=part, resume=True, epochs=3, log=lambda s: None)
    assert torch.equal(_w(whole, "model.safetensors"), _w(part, "model.safetensors"))
    assert from_dict({"lr_decay": 0.5}).lr_decay == 0.5
