"""Every shipped config loads, and each Fashion-MNIST recipe builds the model whose parameter count the
leaderboard in docs/RESULTS.md lists, so `vaelab train --config NAME` still reproduces its row."""

import math

import pytest

from vaelab import models
from vaelab.config import schema as cfg

FASHION = (1, 28, 28)
# the "params" column of docs/RESULTS.md's Fashion-MNIST leaderboard, per recipe
LEADERBOARD_PARAMS = {
    "fashion-vae": 688_464, "fashion-vae-iaf": 1_284_284, "fashion-vae-planar": 1_022_574, "fashion-vamp": 1_080_464,
    "fashion-hvae": 1_189_024, "fashion-hvae-vamp": 1_581_024, "fashion-conv-hvae": 2_101_601,
    "fashion-pixelcnn": 6_859_489, "fashion-pixel-vae": 241_305,
}


@pytest.mark.parametrize("name", cfg.named_configs())
def test_every_shipped_config_loads(name):
    c = cfg.load(name)
    assert c.data and c.model in models.MODELS


@pytest.mark.parametrize("name", sorted(LEADERBOARD_PARAMS))
def test_each_recipe_builds_its_leaderboard_model(name):
    c = cfg.load(name)
    assert c.data == "fashion-mnist"
    model = models.build(c, FASHION)
    assert sum(p.numel() for p in model.parameters()) == LEADERBOARD_PARAMS[name]
    assert model.data_dim == math.prod(FASHION)
