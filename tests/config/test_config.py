"""Configs: TOML round trip, unknown keys raise, flags and --set coerce to the field types."""

import pytest

from vaelab.config import schema as cfg
from vaelab.errors import ConfigError


def test_round_trip_through_toml(tmp_path):
    c = cfg.from_dict({"hidden": [512, 256], "lr": 1e-3, "data_dir": "/x y/\"q\"", "binarize": False})
    p = tmp_path / "c.toml"
    p.write_text(cfg.to_toml(c))
    assert cfg.load(p) == c


def test_shipped_configs_load_with_the_seed_values():
    mlp = cfg.load("seed-mlp-vae")
    assert (mlp.hidden, mlp.latent_dim, mlp.lr, mlp.batch_size, mlp.epochs) == ((200,), 20, 3e-4, 32, 30)
    conv = cfg.load("seed-conv-vae")
    assert conv.model == "conv-vae" and conv.latent_dim == 2
    assert cfg.load("default") == cfg.Config()


def test_set_values_are_parsed_and_coerced():
    values = cfg.parse_set(["lr=1e-3", "hidden=[400]", "binarize=false", "data=npz:/tmp/x.npz", "epochs=3"])
    c = cfg.from_dict(values)
    assert (c.lr, c.hidden, c.binarize, c.data, c.epochs) == (1e-3, (400,), False, "npz:/tmp/x.npz", 3)
    assert cfg.from_dict({"hidden": "512,256"}).hidden == (512, 256)
    assert cfg.from_dict({"lr": 1}).lr == 1.0


@pytest.mark.parametrize("values", [{"latnet_dim": 3}, {"epochs": "many"}, {"likelihood": "poisson"},
                                    {"lr": -1.0}, {"binarize": 3}, {"epochs": 2.5}, {"val_fraction": 1.0}])
def test_bad_values_raise(values):
    with pytest.raises(ConfigError):
        cfg.from_dict(values)
