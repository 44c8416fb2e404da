"""The config by concern: every key in one group, and every refused value named by its own key alone."""

import dataclasses
import re

import pytest

from vaelab.config import schema as cfg
from vaelab.errors import ConfigError

# one bad value per key that has a range or a list of names
BAD = {
    "data": "", "val_fraction": 1.0, "image_size": 2, "dequantize": True, "vocab_size": -1, "stop_words": "x",
    "min_df": 0.0, "max_df": 0.0,
    "hidden": [0], "latent_dim": [4, 0], "likelihood": "x", "posterior_scale": "x", "posterior": "x", "prior": "x",
    "pseudo_inputs": 0, "flow": "x", "flow_steps": -1, "alpha": 0.0, "dropout": 1.0, "embedding_dim": 0,
    "noise": "x", "noise_level": -1.0, "pixel_channels": 0, "pixel_layers": 0, "pixel_kernel": 4, "pixel_context": -1,
    "estimator": "x", "k": 0, "kl_warmup": -1, "free_bits": -1.0, "epochs": -1, "batch_size": 0, "lr": 0.0,
    "lr_decay": 2.0, "ema": 1.0, "weight_decay": -1.0, "patience": -1, "max_minutes": -1.0, "save_every": -1,
    "seed": -1, "device": "x", "precision": "x", "shards": -1,
    "eval_k": 0, "eval_batch": -1, "npmi_window": 1,
    "channels": 2, "classes": -1, "beta": -1.0, "codebook_size": 0, "code_dim": 0, "commitment": -1.0,
    "codebook_decay": 1.0, "codebook_restart": -1.0,
}


def test_every_key_belongs_to_one_group():
    grouped = [k for keys in cfg.GROUPS.values() for k in keys]
    assert sorted(grouped) == sorted(f.name for f in dataclasses.fields(cfg.Config))  # each once, none left out
    assert set(cfg.CHECKS) == set(cfg.GROUPS)  # one validator per group


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_refused_value_is_named_by_its_own_key_alone(key):
    with pytest.raises(ConfigError) as e:
        cfg.from_dict({key: BAD[key]})
    message = str(e.value)
    named = {k for k in BAD if re.search(rf"(?<![\w']){k}(?![\w'])", message)}  # "prior's" is not the key prior
    assert re.match(rf"{key}\b", message), message  # it starts with the key ...
    assert named - {key} <= ({"data"} if key == "dequantize" else set()), message  # ... and names no other


def test_rules_between_keys_name_the_key_they_refuse():
    with pytest.raises(ConfigError, match=r"^noise_level must be below 1 for masking noise"):
        cfg.Config(noise="masking", noise_level=1.0)
    cfg.Config(noise="gaussian", noise_level=1.0)  # a standard deviation may be 1
    with pytest.raises(ConfigError, match=r"^free_bits applies to model pixel-vae trained with estimator sgvb-b"):
        cfg.Config(free_bits=0.5)
    cfg.Config(model="pixel-vae", free_bits=0.5, likelihood="categorical")
