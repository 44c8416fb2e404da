"""The reference loops `vaelab bench` times against compute the same numbers as vaelab."""

import pytest
import torch
from clitools import refused_flag
from linear_models import linear_gaussian
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vaelab.bench.reference import ExampleVAE, PerSample, nll_one_point_at_a_time
from vaelab.estimators.evaluation import point_bounds


def test_one_point_loop_matches_the_batched_evaluator_and_the_exact_likelihood():
    torch.manual_seed(0)
    model, x, log_px = linear_gaussian()
    x, log_px = x[:40], log_px[:40]
    ref = nll_one_point_at_a_time(model, x, k=2000, batch=100)
    ours = -point_bounds(model, x, 2000, seed=1).iwae
    assert abs(ref.mean() - ours.mean()) < 0.05
    assert abs(ref.mean() - float(-log_px.mean())) < 0.1  # both within 0.1 nat of the exact NLL


def test_per_sample_dataset_matches_torchvision_to_tensor():
    images = torch.randint(0, 256, (5, 784), dtype=torch.uint8)
    x, y = PerSample(images, torch.arange(5))[3]
    assert x.shape == (1, 28, 28) and y == 3 and x.dtype == torch.float32
    assert torch.equal(x.reshape(784), images[3].float() / 255)


def test_example_model_loss_is_the_negative_elbo():
    # pytorch/examples' BCE + hand-written KL against torch.distributions' densities, same noise
    torch.manual_seed(0)
    m = ExampleVAE()
    x = torch.bernoulli(torch.rand(7, 784))
    torch.manual_seed(1)
    loss = m.loss(x)
    with torch.no_grad():
        h = torch.relu(m.fc1(x))
        q = Independent(Normal(m.fc21(h), torch.exp(0.5 * m.fc22(h))), 1)
        torch.manual_seed(1)
        z = q.mean + torch.randn_like(q.mean) * q.stddev
        p_x = Independent(Bernoulli(logits=m.fc4(torch.relu(m.fc3(z)))), 1)
        prior = Independent(Normal(torch.zeros(20), torch.ones(20)), 1)
        elbo = p_x.log_prob(x) - kl_divergence(q, prior)  # (B,)
    assert float(loss.detach()) == pytest.approx(-float(elbo.mean()), rel=1e-4)


def test_bench_rejects_bad_numbers(capsys):
    assert "argument --k: must be an integer >= 1" in refused_flag(["bench", "--k", "0"], capsys)
