"""Your own encoder and decoder (models/user_networks.py): a conv pair defined here trains, evaluates, resumes
bit-exactly and reloads in a fresh process; a missing module and a decoder of the wrong shape are one error line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bounds_by_hand import bounds
from clitools import expect_error, safetensors_content
from safetensors.torch import load_file
from torch import nn

import vaelab
from vaelab.errors import ConfigError
from vaelab.models import user_networks
from vaelab.runs import inputs, loading

QUIET = dict(log=lambda s: None)
SMALL = dict(data="digits", latent_dim=3, batch_size=64, device="cpu", eval_k=20)
HERE = Path(__file__).parent


class ConvEncoder(nn.Module):
    """(B, 1, 8, 8) -> (B, 2 * latent): one stride-2 conv, then a linear layer."""

    def __init__(self, latent: int, width: int = 4):
        super().__init__()
        self.latent, self.width = latent, width
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(width * 16, 2 * latent))

    def forward(self, x):
        return self.body(x)


class ConvDecoder(nn.Module):
    """(B, latent) -> (B, 1, 8, 8) logits: a linear layer to 4x4 maps, one stride-2 transposed conv."""

    def __init__(self, latent: int, width: int = 4, side: int = 8):
        super().__init__()
        self.latent, self.width, self.side = latent, width, side
        self.dense = nn.Linear(latent, width * (side // 2) ** 2)
        self.up = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)

    def forward(self, z):
        h = torch.relu(self.dense(z)).reshape(-1, self.width, self.side // 2, self.side // 2)
        return self.up(h)


def nets(latent=3, side=8):
    return dict(encoder=ConvEncoder(latent), decoder=ConvDecoder(latent, side=side))


def test_the_contract_is_read_back_from_the_instances():
    assert user_networks.spec_of(ConvDecoder(3, width=5), "decoder") == (
        f"{__name__}:ConvDecoder", json.dumps({"latent": 3, "side": 8, "width": 5}, sort_keys=True))

    class Local(nn.Module):
        pass

    with pytest.raises(ConfigError, match="inside a function"):
        user_networks.spec_of(Local(), "encoder")


@pytest.mark.precision(kind="auto")  # bit-exact resume under the default precision (runs compared alike)
def test_a_user_conv_pair_trains_evaluates_resumes_bit_exactly_and_reloads_in_a_fresh_process(tmp_path):
    whole = vaelab.train(finish=False, out=tmp_path / "whole", epochs=3, **SMALL, **nets(), **QUIET)
    config = (whole / "config.toml").read_text()
    assert f'encoder = "{__name__}:ConvEncoder"' in config and "decoder_args" in config
    part = vaelab.train(finish=False, out=tmp_path / "part", epochs=1, **SMALL, **nets(), **QUIET)
    vaelab.train(out=part, resume=True, epochs=3, finish=False, **QUIET)
    assert safetensors_content(whole / "model.safetensors") == safetensors_content(part / "model.safetensors")
    weights = load_file(str(whole / "model.safetensors"))
    assert any(k.startswith("encoder.net.body.0.") for k in weights)  # the user's conv layers were trained

    result = vaelab.evaluate(whole, k=20)
    # the evaluated ELBO and IWAE-20 against the same bounds from independent draws through the user's networks
    # (bounds_by_hand: the model's distributions, no vaelab estimator)
    c, model = loading.load_model(whole)  # vaelab.load's model, with the run's config
    hand = bounds(model, inputs.eval_inputs(c, inputs.load_data(c), "test", torch.device("cpu")), 20)
    assert abs(result["elbo"] - float(hand.elbo.mean())) < hand.elbo_tol
    assert abs(result["iwae"] - float(hand.iwae.mean())) < hand.iwae_tol
    x = torch.rand(5, 1, 8, 8).round()
    local = model(x)
    assert local.mean.shape == x.shape and local.elbo.shape == (5,)

    code = ("import sys, json, torch, vaelab; m = vaelab.load(sys.argv[1]); torch.manual_seed(0); "
            "x = torch.rand(5, 1, 8, 8).round(); print(json.dumps(m.reconstruct(x).flatten().tolist()))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE / "support"), str(HERE.parent / "src")]))
    out = subprocess.run([sys.executable, "-c", code, str(whole)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=True).stdout
    torch.manual_seed(0)
    x = torch.rand(5, 1, 8, 8).round()
    assert torch.tensor(json.loads(out)).equal(model.reconstruct(x).flatten())


def test_a_missing_module_is_one_error_line_when_loading(tmp_path, capsys):
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=1, **SMALL, **nets(), **QUIET)
    config = run / "config.toml"
    config.write_text(config.read_text().replace(f'"{__name__}:', '"no_such_pkg.nets:'))
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg.nets'"):
        vaelab.load(run)
    err = expect_error(["evaluate", str(run)], capsys)
    assert "no_such_pkg.nets" in err


def test_a_decoder_of_the_wrong_shape_is_refused_before_anything_is_written(tmp_path):
    wrong = r"decoder .*ConvDecoder returned \(2, 1, 12, 12\).*must return \(2, 1, 8, 8\)"
    with pytest.raises(ConfigError, match=wrong):
        vaelab.train(out=tmp_path / "r", epochs=1, **SMALL, **nets(side=12), **QUIET)
    assert not (tmp_path / "r").exists()


def test_the_cli_imports_the_classes_by_name_and_refuses_a_missing_module(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    name = Path(__file__).stem
    args = ["train", "--data", "digits", "--epochs", "1", "--latent-dim", "3", "--device", "cpu", "--no-report",
            "--set", 'encoder_args={"latent": 3}', "--set", 'decoder_args={"latent": 3}']
    err = expect_error([*args, "--out", str(tmp_path / "bad"), "--encoder", "no_such_pkg.nets:Enc",
                        "--decoder", f"{name}:ConvDecoder"], capsys)
    assert "cannot import module 'no_such_pkg.nets'" in err and not (tmp_path / "bad").exists()
    err = expect_error([*args, "--out", str(tmp_path / "wide"), "--encoder", f"{name}:ConvEncoder",
                        "--decoder", f"{name}:ConvDecoder", "--set", 'decoder_args={"latent": 3, "side": 4}'], capsys)
    assert "returned (2, 1, 4, 4)" in err and not (tmp_path / "wide").exists()
    from vaelab.cli.main import run as cli
    assert cli([*args, "--out", str(tmp_path / "ok"), "--encoder", f"{name}:ConvEncoder",
                "--decoder", f"{name}:ConvDecoder"]) == 0
    assert vaelab.load(tmp_path / "ok").decoder.net.width == 4
