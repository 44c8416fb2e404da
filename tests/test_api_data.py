"""Tensors, arrays and Datasets as data (runs/user_arrays.py); encode, reconstruct, sample and model(x) in the
examples' natural shape (models/contract.py: as_rows, Forward)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.nn.functional import logsigmoid
from torch.utils.data import Dataset, TensorDataset

import vaelab
from vaelab.data import load_images
from vaelab.errors import ConfigError

QUIET = dict(log=lambda s: None)
SMALL = dict(hidden=(32,), latent_dim=3, batch_size=64, device="cpu", epochs=1, finish=False)


def digits(n=300):
    d = load_digits()
    return torch.tensor(d.images[:n] / 16.0, dtype=torch.float32), torch.tensor(d.target[:n])


class Pairs(Dataset):
    """A map-style Dataset of (x (1, 8, 8), label) items, as torchvision's datasets yield them."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i][None], self.y[i]


def kept(run):
    """The arrays the run keeps (RUN/data.npz), read as its own npz data."""
    with np.load(run / "data.npz") as f:
        return {k: f[k] for k in f.files}


def test_a_channels_first_tensor_trains_and_the_run_keeps_it_as_one_channel(tmp_path):
    x, _ = digits()
    run = vaelab.train(x[:, None], out=tmp_path / "r", **SMALL, **QUIET)  # (N, 1, 8, 8), given first
    arrays = kept(run)
    assert arrays["x"].shape == (300, 8, 8) and np.array_equal(arrays["x"], x.numpy())
    assert vaelab.load(run).data_shape == (1, 8, 8)


def test_a_dataset_of_pairs_brings_its_labels(tmp_path):
    x, y = digits()
    run = vaelab.train(data=Pairs(x, y), out=tmp_path / "r", **SMALL, **QUIET)
    arrays = kept(run)
    assert np.array_equal(arrays["x"], x.numpy()) and np.array_equal(arrays["y"], y.numpy())


def test_a_train_test_pair_keeps_its_own_test_split(tmp_path):
    x, y = digits()
    run = vaelab.train(data=(TensorDataset(x[:250], y[:250]), TensorDataset(x[250:], y[250:])),
                       out=tmp_path / "r", val_fraction=0.0, **SMALL, **QUIET)
    data = load_images(f"npz:{run / 'data.npz'}", val_fraction=0.0)
    assert len(data.train) == 250 and len(data.test) == 50  # not the 20% hold-out of one array
    assert torch.equal(data.y_test, y[250:]) and torch.allclose(data.test.float(), x[250:].reshape(50, 64))


@pytest.mark.parametrize("data, message", [
    (TensorDataset(torch.rand(5, 3, 8, 8)), r"\(N, 1, H, W\)"),
    ((torch.rand(10, 8, 8), torch.rand(10, 6, 6)), "give one shape"),
    (Pairs(torch.rand(10, 8, 8), torch.rand(10)), "label must be one integer"),
    ([torch.rand(10, 8, 8)] * 3, r"\(train, test\) pair"),
])
def test_bad_in_memory_data_is_one_config_error_before_anything_is_written(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        vaelab.train(data=data, out=tmp_path / "r", **SMALL, **QUIET)
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = vaelab.train(data="digits", out=tmp_path_factory.mktemp("m") / "r", **SMALL, **QUIET)
    return vaelab.load(run)


def test_encode_and_reconstruct_take_the_natural_shape_and_sample_returns_it(model):
    x, _ = digits(7)
    flat = model.encode(x.reshape(7, 64)).mean
    for shaped in (x, x[:, None]):  # (N, 8, 8) and (N, 1, 8, 8): the same rows
        assert torch.equal(model.encode(shaped).mean, flat)
        assert model.reconstruct(shaped).shape == shaped.shape
    assert torch.equal(model.reconstruct(x[:, None]).reshape(7, 64), model.reconstruct(x.reshape(7, 64)))
    assert vaelab.sample(model, 5, seed=1).shape == (5, 1, 8, 8)
    with pytest.raises(vaelab.VaelabError, match=r"\(B, 1, 8, 8\) or \(B, 64\)"):
        model.encode(torch.rand(3, 7, 7))


def test_forward_returns_the_single_sample_elbo_and_its_terms_computed_by_hand(model):
    x = digits(6)[0][:, None].round()  # (6, 1, 8, 8) in {0, 1}
    torch.manual_seed(3)
    out = model(x)
    raw = model.encoder(x.reshape(6, 64))
    mu, logvar = raw[:, :3], raw[:, 3:]
    # KL(N(mu, sigma^2) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    logits = model.decoder(out.z)
    flat = x.reshape(6, 64)
    log_px = (flat * logsigmoid(logits) + (1 - flat) * logsigmoid(-logits)).sum(1)  # Bernoulli log p(x|z)
    assert torch.allclose(out.kl, kl, atol=1e-5) and torch.allclose(out.log_likelihood, log_px, atol=1e-4)
    assert torch.allclose(out.elbo, log_px - kl, atol=1e-4)
    assert torch.allclose(out.loss, -(log_px - kl).mean(), atol=1e-4)
    assert out.mean.shape == x.shape and torch.allclose(out.mean.reshape(6, 64), torch.sigmoid(logits), atol=1e-6)
    out.loss.backward()  # differentiable, as a PyTorch user expects
    assert model.encoder[0].weight.grad is not None
