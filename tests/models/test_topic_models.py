"""ProdLDA and the ETM: the Dirichlet-Laplace prior, the logistic-normal KL, topic recovery, eval-mode bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab import models
from vaelab.config.schema import Config
from vaelab.distributions.densities import BagOfWords
from vaelab.estimators.evaluation import point_bounds
from vaelab.estimators.objectives import sgvb_b
from vaelab.models.dirichlet import laplace_moments
from vaelab.topics import scores


def _model(name: str = "prodlda", vocab: int = 12, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = {"hidden": (16,), "latent_dim": 4} | kw
    c = Config(model=name, likelihood="multinomial", **kw)
    return models.build(c, (vocab,))


def test_laplace_approximation_matches_the_closed_form():
    # alpha = 1 with K topics: mu = 0 and sigma^2 = 1 - 1/K in every coordinate
    p = _model(latent_dim=5, alpha=1.0).prior()
    assert torch.allclose(p.mean, torch.zeros(5)) and torch.allclose(p.variance, torch.full((5,), 0.8))
    # alpha = (0.5, 1, 2), K = 3, by hand: sigma^2_k = (1/a_k)(1/3) + (2 + 1 + 0.5)/9
    mu, var = laplace_moments(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    assert torch.allclose(var, torch.tensor([2 / 3 + 3.5 / 9, 1 / 3 + 3.5 / 9, 1 / 6 + 3.5 / 9], dtype=torch.float64))
    # mu is the mode of sum_k alpha_k log softmax(z)_k (the Dirichlet in the softmax basis) with sum z = 0
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64) * (z - z.mean()).log_softmax(0)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(mu, (z - z.mean()).detach(), atol=1e-4)  # the mode: log(alpha) centred
    # a symmetric alpha = 0.02 with K = 10 (the ProdLDA paper's): sigma^2 = 50 * 0.8 + 500 / 100 = 45
    p = _model(latent_dim=10, alpha=0.02).prior()
    assert torch.allclose(p.variance, torch.full((10,), 45.0))


def test_kl_between_two_logistic_normals_is_the_papers_closed_form_and_monte_carlo():
    model = _model(latent_dim=4, alpha=0.3).eval()
    x = torch.randint(0, 4, (3, 12)).float()
    with torch.no_grad():
        q, p = model.encode(x), model.prior()
        kl = model.analytic_kl(q)  # (3,)
        # Srivastava & Sutton 2017, eq. 7: 1/2 (tr(S1^-1 S0) + (m1 - m0)^T S1^-1 (m1 - m0) - K + log |S1| / |S0|)
        s0, s1, m0, m1 = q.variance.double(), p.variance.double(), q.mean.double(), p.mean.double()
        paper = 0.5 * ((s0 / s1).sum(-1) + ((m1 - m0) ** 2 / s1).sum(-1) - 4 + (s1.log().sum() - s0.log().sum(-1)))
        assert torch.allclose(kl.double(), paper, atol=1e-5)
        torch.manual_seed(1)
        z = q.sample((200_000,))  # (S, 3, 4)
        lw = (q.log_prob(z) - p.log_prob(z)).double()
        mc, se = lw.mean(0), lw.std(0) / math.sqrt(len(lw))
    assert (kl.double() - mc).abs().max() < 4 * se.max(), (kl, mc, se)
    assert (kl > 0.05).all()  # q is not the prior: the check has room to fail


def _lda_corpus(true: np.ndarray, n_docs: int, length: int, alpha: float, seed: int) -> torch.Tensor:
    """Word counts (N, |V|) from LDA with topics true (K, |V|) and Dirichlet(alpha) proportions."""
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(len(true), alpha), n_docs)  # (N, K)
    return torch.tensor(np.stack([rng.multinomial(length, t @ true) for t in theta]), dtype=torch.float32)


def test_prodlda_recovers_five_known_topics():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    true = rng.dirichlet(np.full(100, 0.05), 5)  # (5, 100) sparse topics
    x = _lda_corpus(true, 2000, 60, 0.1, seed=1)
    model = _model(vocab=100, latent_dim=5, alpha=0.1, hidden=(64,))
    with torch.no_grad():  # the decoder's offsets start at the log unigram frequencies, as models.build(c, s, data)
        model.decoder[1].norm.shift.copy_((x.sum(0) + 1).log() - (x.sum() + 100).log())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(25):
        for idx in torch.randperm(len(x), generator=g).split(100):
            loss = sgvb_b(model, x[idx]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    learned = model.topic_weights.detach().exp().T.numpy()  # (5, 100) p(w | theta = e_k)
    cos = (true / np.linalg.norm(true, axis=1, keepdims=True)) @ (learned / np.linalg.norm(learned, axis=1,
                                                                                             keepdims=True)).T
    assert cos.max(axis=1).min() >= 0.9, np.round(cos, 2)


def test_bounds_are_per_document_in_eval_mode():
    model = _model(latent_dim=3)
    x = torch.randint(0, 5, (40, 12)).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):  # move the batch-norm running statistics away from their start
        loss = sgvb_b(model, x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    whole = point_bounds(model, x, k=5, batch=40)
    alone = [point_bounds(model, x[i:i + 1], k=5, batch=1) for i in range(3)]
    assert not model.training
    with torch.no_grad():
        q_all, q_one = model.encode(x), model.encode(x[:1])
        assert torch.allclose(q_all.mean[:1], q_one.mean, atol=1e-6)
        z = torch.randn(2, 1, 3)
        assert torch.allclose(model.log_likelihood(x[:1], z), model.decode(z).log_prob(x[:1]))
    for i, b in enumerate(alone):
        assert b.kl[0] == pytest.approx(whole.kl[i], abs=1e-4)  # the closed form: no noise involved
    model.train()
    with torch.no_grad():  # training mode normalises with the batch: the same document gets another q
        assert not torch.allclose(model.encode(x).mean[:1], model.encode(x[:20]).mean[:1], atol=1e-3)


def test_perplexity_by_hand_when_q_is_the_prior_and_topics_do_not_matter():
    """beta = 0 makes p(d|z) = prod_w p_w^n_w for every z; q = p makes every log weight log p(d) exactly."""
    model = _model(latent_dim=3, alpha=0.5)
    p_w = torch.tensor([0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.04, 0.04, 0.03, 0.03, 0.03, 0.03])
    prior = model.prior()
    with torch.no_grad():
        enc, dec = model.encoder, model.decoder[1]
        for head in (enc.mean, enc.logvar):
            head.weight.zero_()
            head.bias.zero_()
        enc.mean_bn.shift.copy_(prior.mean)  # eval mode: BN(0) = 0, so q's mean is the prior's
        enc.logvar_bn.shift.copy_(prior.variance.log())
        dec.beta.weight.zero_()
        dec.norm.shift.copy_(p_w.log())
    docs = torch.tensor([[3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], [0, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, 0.]])
    pb = point_bounds(model, docs, k=50)
    # by hand: doc 1 has 6 tokens, 3 log .3 + log .2 + 2 log .03; doc 2 has 7, 5 log .1 + log .1 + log .05
    log_p = [3 * math.log(0.3) + math.log(0.2) + 2 * math.log(0.03), 6 * math.log(0.1) + math.log(0.05)]
    assert pb.kl == pytest.approx([0, 0], abs=1e-5)
    assert pb.elbo == pytest.approx(log_p, abs=1e-4) and pb.iwae == pytest.approx(log_p, abs=1e-4)
    ppl = scores.perplexity(pb.elbo, np.array([6, 7]))
    assert ppl == pytest.approx(math.exp(-sum(log_p) / 13), rel=1e-5)
    assert ppl == pytest.approx(9.3398, abs=1e-3)


def test_diversity_by_hand_and_topic_lists():
    assert scores.diversity(np.array([[0, 1, 2], [2, 3, 4]])) == pytest.approx(5 / 6)
    assert scores.diversity(np.array([[0, 1], [1, 0]])) == pytest.approx(0.5)
    model = _model(latent_dim=3)
    with torch.no_grad():
        model.decoder[1].beta.weight.copy_(torch.eye(12)[:, :3] * 5.0)  # topic k puts word k first
    lists = scores.topic_lists(model, 1)
    assert lists.ravel().tolist() == [0, 1, 2] and scores.diversity(lists) == 1.0
    nvdm = _model("nvdm", latent_dim=3)
    assert scores.topic_lists(nvdm, 4).shape == (6, 4)  # both ends of R's columns


def test_etm_topics_are_distributions_over_the_embedded_words():
    model = _model("etm", latent_dim=3, embedding_dim=5)
    beta = model.topic_weights.detach().exp()  # (|V|, K)
    assert torch.allclose(beta.sum(0), torch.ones(3), atol=1e-5)
    rho, alpha = model.decoder[1].rho.detach(), model.decoder[1].alpha.weight.detach()
    assert torch.allclose(beta.T, torch.softmax(alpha @ rho.T, -1), atol=1e-6)
    theta = torch.tensor([[0.7, 0.2, 0.1]])  # p(w | theta) = theta^T beta, so log p(d) by hand
    d = torch.zeros(1, 12)
    d[0, 4] = 2
    logits = model.decoder[1](theta)
    want = 2 * math.log(float(theta[0] @ beta[4]))
    assert float(BagOfWords(logits.detach()).log_prob(d)) == pytest.approx(want, abs=1e-5)
