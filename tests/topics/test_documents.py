"""Document models: the bag-of-words likelihood, NVDM, perplexity, NPMI, topics, LDA and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from bounds_by_hand import bounds
from coherence_by_hand import mean_npmi, split_documents, top_words
from corpora import two_topic_lines, write_tsv
from torch.distributions import Multinomial

import vaelab
from vaelab import models
from vaelab.cli.main import run as cli
from vaelab.config.schema import Config
from vaelab.data import corpus, load_corpus, rows
from vaelab.distributions.densities import BagOfWords
from vaelab.estimators.evaluation import point_bounds
from vaelab.runs import claims, inputs, loading
from vaelab.topics import coherence, lda, scores
from vaelab.training.loop import make_optimizer

QUIET = dict(log=lambda s: None)


def _csr(values: list) -> torch.Tensor:
    """Word counts stored as the corpus loader stores them."""
    import scipy.sparse as sp

    return corpus._to_torch(sp.csr_matrix(np.array(values, dtype=np.float32)))
TINY = dict(model="nvdm", hidden=(32,), latent_dim=2, batch_size=8, lr=3e-3, device="cpu", eval_k=20)


@pytest.fixture(scope="module")
def two_topics(tmp_path_factory):
    """A corpus path whose documents use either words a0..a9 or b0..b9."""
    return write_tsv(tmp_path_factory.mktemp("corpus") / "two", two_topic_lines(80))


@pytest.fixture(scope="module")
def nvdm_run(two_topics, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nvdm"
    assert cli(["-q", "train", "--data", f"corpus:{two_topics}", "--model", "nvdm", "--hidden", "32",
                "--latent-dim", "2", "--batch-size", "8", "--lr", "3e-3", "--epochs", "15", "--eval-k", "50",
                "--device", "cpu", "--out", str(out)]) == 0
    return out


def test_bag_of_words_log_prob_against_torch_multinomial():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6)  # (K, B, |V|)
    counts = torch.tensor([[2., 0, 1, 0, 0, 3], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1], [0, 5, 0, 0, 0, 0]])
    full = Multinomial(logits=logits.unsqueeze(1).expand(3, 4, 4, 6)[:, 0], validate_args=False).log_prob(counts)
    with_coef = BagOfWords(logits, coefficient=True).log_prob(counts)
    assert torch.allclose(with_coef, full, atol=1e-5)
    # without the coefficient: exactly sum_i n_i log softmax(l)_i, less than the pmf by log N!/prod n_i!
    plain = BagOfWords(logits).log_prob(counts)
    assert torch.allclose(plain, (counts * logits.log_softmax(-1)).sum(-1), atol=1e-5)
    n = counts.sum(-1)
    coef = torch.lgamma(n + 1) - torch.lgamma(counts + 1).sum(-1)  # log 6!/(2!3!) = log 60 for the first
    assert coef[0].item() == pytest.approx(math.log(60), rel=1e-6)
    assert torch.allclose(with_coef - plain, coef.expand(3, 4), atol=1e-5)


def test_bag_of_words_sampling_and_mean():
    p = BagOfWords(torch.log(torch.tensor([0.5, 0.25, 0.25])), total_count=4000)
    draws = p.sample((5,))
    assert draws.shape == (5, 3) and torch.all(draws.sum(-1) == 4000)
    assert torch.allclose(draws.mean(0) / 4000, torch.tensor([0.5, 0.25, 0.25]), atol=0.03)
    assert torch.allclose(p.mean, torch.tensor([2000.0, 1000.0, 1000.0]))


def test_npmi_by_hand():
    # documents {a,b}, {a,b}, {c}, {a}: P(a)=3/4, P(b)=1/2, P(a,b)=1/2, c never meets a or b
    docs = _csr([[1., 2, 0], [1, 1, 0], [0, 0, 4], [3, 0, 0]])
    ab = math.log((1 / 2) / (3 / 4 * 1 / 2)) / -math.log(1 / 2)
    got = coherence.npmi([[0, 1], [0, 2], [0, 1, 2]], docs)
    assert got[0] == pytest.approx(ab) and got[1] == -1.0
    assert got[2] == pytest.approx((ab - 1 - 1) / 3)


def test_perplexity_formulas_and_unigram():
    log_p = np.array([-10.0, -30.0])
    n = np.array([5, 10])
    assert scores.perplexity(log_p, n) == pytest.approx(math.exp(40 / 15))
    assert scores.perplexity_per_doc(log_p, n) == pytest.approx(math.exp((2 + 3) / 2))
    counts = _csr([[3., 0, 1], [1, 0, 0]])
    lp = scores.unigram_log_probs(counts)
    assert torch.allclose(lp.exp(), torch.tensor([5 / 8, 1 / 8, 2 / 8]))  # add-one: (4+1, 0+1, 1+1) / (5+3)


def test_topic_ends():
    w = np.array([[3.0, -1], [1, 2], [-2, 0], [0, -5]])  # (|V|=4, K=2)
    plus, minus = scores.ends(w, 2)
    assert plus.tolist() == [[0, 1], [1, 2]] and minus.tolist() == [[2, 3], [3, 0]]


def test_label_purity():
    z = np.array([[3.0, 0], [2, 1], [1, 2], [0, 3]])
    y = np.array([0, 0, 1, 1])
    assert scores.label_purity(z, y, 2).tolist() == [1.0, 1.0]
    assert scores.label_purity(z, y, 4).tolist() == [0.5, 0.5]


def test_nvdm_decoder_is_the_seed_softmax_with_unigram_bias(two_topics):
    c = Config(data=f"corpus:{two_topics}", **TINY)
    data = inputs.load_data(c)
    model = models.build(c, data.shape, data)
    assert model.topic_weights.shape == (data.dim, 2)  # R is |V| x K
    # b is the add-one unigram of the training split
    counts = rows(data.train, None, 1.0).sum(0)
    expect = torch.log((counts + 1) / (counts.sum() + data.dim))
    assert torch.allclose(model.decoder.bias, expect, atol=1e-6)
    # p(x_i | z) = exp(z^T R x_i + b_i) / sum_j exp(z^T R x_j + b_j), eq. 17.14-17.15 with one-hot x_i
    z = torch.randn(5, 2)
    x = torch.eye(data.dim)[3]
    energy = -(z @ model.topic_weights.T @ x) - model.decoder.bias @ x  # E(x_3; z), (5,)
    partition = torch.logsumexp(z @ model.topic_weights.T + model.decoder.bias, -1)
    with torch.no_grad():
        assert torch.allclose(model.decode(z).log_prob(x), -energy - partition, atol=1e-5)


def test_nvdm_kl_is_analytic(two_topics):
    c = Config(data=f"corpus:{two_topics}", **TINY)
    data = inputs.load_data(c)
    torch.manual_seed(0)
    model = models.build(c, data.shape, data)
    x = rows(data.test, None, 1.0)
    pb = point_bounds(model, x, 2000, seed=1)
    # the analytic KL matches a Monte-Carlo estimate from the same posterior
    with torch.no_grad():
        q = model.encode(x)
        z = q.sample((20000,))
        mc = (q.log_prob(z) - model.prior().log_prob(z)).mean(0).numpy()
    assert np.allclose(pb.kl, mc, atol=0.05)


def test_weight_decay_only_touches_weight_matrices(two_topics):
    c = Config(data=f"corpus:{two_topics}", **TINY)
    model = models.build(c, (20,))
    opt = make_optimizer(model, 1e-3, 0.5)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.5 for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in decayed}
    assert names == {"encoder.0.weight", "encoder.2.weight", "decoder.weight"}
    # one step with a zero loss gradient moves only the decayed weights (Adam's first step is lr * sign)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        moved = not torch.equal(before[n], p.detach())
        assert moved == (n in names), n


def test_train_evaluate_topics_plot_report(two_topics, nvdm_run, capsys):
    ev = json.loads((nvdm_run / "eval.json").read_text())
    assert ev["likelihood"] == "multinomial" and ev["k"] == 50
    assert loading.load_config(nvdm_run).likelihood == "multinomial"  # the saved config names the likelihood used
    n_words = ev["words"]
    assert ev["perplexity"] == pytest.approx(math.exp(-ev["elbo"] * ev["n"] / n_words))
    assert ev["perplexity_is"] == pytest.approx(math.exp(-ev["iwae"] * ev["n"] / n_words))
    # the exact perplexity of this 2-D latent NVDM: log p(d) = log of the integral of p(z) p(d|z) over z by
    # quadrature, on a grid fine enough that halving its spacing changes nothing
    model = vaelab.load(nvdm_run)
    x = rows(inputs.load_data(loading.load_config(nvdm_run)).test, None, 1.0)  # (16, 20) test counts
    exact = _log_p_by_quadrature(model, x, 401)
    assert torch.allclose(exact, _log_p_by_quadrature(model, x, 801), rtol=0, atol=1e-6)
    ppl_exact = math.exp(-float(exact.sum()) / n_words)
    # the reported bounds (fp32) against independent draws of the same estimators, and those against log p(d)
    fp32 = vaelab.evaluate(nvdm_run, k=2000, write=False, precision="fp32")
    hand = bounds(model, x, 2000)
    assert abs(fp32["elbo"] - float(hand.elbo.mean())) < hand.elbo_tol
    assert abs(fp32["iwae"] - float(hand.iwae.mean())) < hand.iwae_tol
    gap_iwae, gap_elbo = float(exact.mean() - hand.iwae.mean()), float(exact.mean() - hand.elbo.mean())
    assert -hand.iwae_tol < gap_iwae < 0.05 and gap_elbo > 0.2  # IWAE-2000 <= log p(d), tight; the ELBO ~0.4 below
    per_word = lambda nats: nats * ev["n"] / n_words  # noqa: E731 (nats per document -> log perplexity)
    assert abs(math.log(fp32["perplexity_is"] / ppl_exact)) < per_word(0.05 + hand.iwae_tol)
    assert math.log(fp32["perplexity"] / ppl_exact) > per_word(0.2)
    # 20 equally likely words per document: the unigram is near 20; a model that knows the topic, near 10
    assert 19 < ev["unigram_perplexity"] < 21
    assert ev["perplexity"] < 0.75 * ev["unigram_perplexity"]
    assert "bits_per_dim" not in ev
    # NPMI of the top-10 words at both ends of R's columns, counted by hand in the training documents
    vocab = inputs.load_data(loading.load_config(nvdm_run)).vocabulary
    weights = model.topic_weights.detach().numpy()  # (|V|, K)
    ends = [top_words(weights[:, k], vocab, 10, largest) for largest in (True, False) for k in range(weights.shape[1])]
    train = split_documents(two_topics / "corpus.tsv", "train", set(vocab))
    assert ev["npmi"] == pytest.approx(mean_npmi(ends, train), abs=1e-12)
    assert (nvdm_run / "plots" / "topics.png").is_file() and (nvdm_run / "plots" / "latent.png").is_file()
    for kind in ("recon", "samples", "manifold", "interp"):
        assert not (nvdm_run / "plots" / f"{kind}.png").exists()
    html = (nvdm_run / "report.html").read_text()
    assert "perplexity_is" in html and 'alt="topics:' in html and 'alt="latent:' in html

    capsys.readouterr()
    assert cli(["topics", str(nvdm_run), "--top", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith("z") and "+" in out[0] and "-" in out[1]
    # the dimension with the most spread separates the topics: one end is a-words, the other b-words
    plus, minus = out[0].split("+ ")[1].split(), out[1].split("- ")[1].split()
    assert {w[0] for w in plus} != {w[0] for w in minus} and len({w[0] for w in plus}) == 1

    assert cli(["plot", str(nvdm_run), "--kind", "all"]) == 0
    out = capsys.readouterr().out
    assert "recon" not in out and "wrote" in out and "topics.png" in out  # image kinds are not tried
    assert cli(["evaluate", str(nvdm_run), "--k", "10"]) == 0
    out = capsys.readouterr().out
    assert "perplexity_is" in out and "unigram_perplexity" in out


@torch.no_grad()
def _log_p_by_quadrature(model, x: torch.Tensor, n: int, half: float = 6.0) -> torch.Tensor:
    """log p(d) = log sum over an n x n grid on [-half, half]^2 of N(z; 0, I) p(d|z) dz for a 2-D latent, (N,)."""
    model.eval()
    g = torch.linspace(-half, half, n, dtype=torch.float64)
    z = torch.cartesian_prod(g, g)  # (n^2, 2)
    log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)  # (n^2,)
    parts = [model.decode(c[:, None, :].float()).log_prob(x).double() for c in z.split(20000)]  # (chunk, N) each
    return torch.logsumexp(torch.cat(parts) + log_prior[:, None], 0) + 2 * math.log(float(g[1] - g[0]))


def test_topics_of_an_image_model_is_an_error(tmp_path, capsys):
    run = vaelab.train(finish=False,
                       out=tmp_path / "img", epochs=1, hidden=(16,), latent_dim=2, device="cpu", log=lambda s: None)
    assert cli(["topics", str(run)]) == 2
    assert "document model" in capsys.readouterr().err


def test_resume_on_sparse_data_is_bit_exact(two_topics, tmp_path):
    kw = dict(data=f"corpus:{two_topics}", weight_decay=0.01, **TINY)
    whole = vaelab.train(finish=False, out=tmp_path / "whole", epochs=4, **kw, **QUIET)
    part = vaelab.train(finish=False, out=tmp_path / "part", epochs=2, **kw, **QUIET)
    vaelab.train(finish=False, out=part, resume=True, epochs=4, **QUIET)
    a = (whole / "metrics.jsonl").read_text().splitlines()
    b = (part / "metrics.jsonl").read_text().splitlines()
    key = lambda s: {k: v for k, v in json.loads(s).items() if k != "train_seconds"}  # noqa: E731
    assert [key(s) for s in a] == [key(s) for s in b]


def test_lda_baseline_on_two_topics(two_topics, nvdm_run, tmp_path, capsys):
    data = load_corpus(f"corpus:{two_topics}", **QUIET)
    r = lda.fit_lda(data, 2, max_iter=30)
    # two topics with disjoint words: each topic's top words come from one side, and co-occur
    sides = [{w[0] for w in t.split()} for t in r["topics"]]
    assert sorted(map(tuple, sides)) == [("a",), ("b",)]
    assert r["perplexity"] < 0.75 * r["unigram_perplexity"]
    # NPMI: each topic's top-10 words, counted by hand in the training documents
    topics = [t.split() for t in r["topics"]]
    assert [len(t) for t in topics] == [10, 10]
    train = split_documents(two_topics / "corpus.tsv", "train", set(data.vocabulary))
    assert r["npmi"] == pytest.approx(mean_npmi(topics, train), abs=1e-12) and r["npmi"] > 0.3
    # the NLL column is the same bound as the perplexity, in nats per document
    assert r["nll"] == pytest.approx(math.log(r["perplexity"]) * r["words"] / r["n"])

    out = tmp_path / "lda"
    args = ["baseline", "--model", "lda", "--components", "2", "--like", str(nvdm_run), "--out", str(out)]
    assert cli(args) == 0
    saved = json.loads((out / "baseline.json").read_text())
    assert saved["baseline"] == "lda" and saved["components"] == 2 and saved["likelihood"] == "multinomial"
    assert "perplexity" in saved and "npmi" in saved and "bits_per_dim" not in saved
    assert saved["test_inputs"].endswith("word counts")
    assert saved["n"] == json.loads((nvdm_run / "eval.json").read_text())["n"]
    before = (out / "baseline.json").read_bytes()
    assert cli(args) == 2 and f"{out} already holds a baseline; --overwrite replaces it" in capsys.readouterr().err
    assert (out / "baseline.json").read_bytes() == before
    assert cli(["baseline", "--model", "lda", "--data", "digits", "--out", str(tmp_path / "x")]) == 2
    assert "word counts" in capsys.readouterr().err and not (tmp_path / "x").exists()

    # compare: the NVDM run and the LDA baseline in one table, with the document columns
    assert cli(["compare", str(nvdm_run), "--baseline", str(out), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "test perplexity" in table and "NPMI" in table and "LDA per-document ELBO" in table
    ev = json.loads((nvdm_run / "eval.json").read_text())
    # both perplexities from per-document ELBOs: the NVDM's and LDA's without scikit-learn's topic-word term
    assert f"{ev['perplexity']:.2f}" in table and f"{saved['perplexity_elbo']:.2f}" in table
    assert f"{saved['nll_elbo']:.2f} (LDA per-document ELBO)" in table and f"{saved['perplexity']:.2f}" not in table


def test_lda_bounds_by_hand_with_one_topic(two_topics):
    # one topic: every token is the topic's, so batch VB ends at lambda = eta + the training counts (eta = 1/K = 1),
    # E[log theta] = 0, and a test document's ELBO is sum_w n_w (digamma(lambda_w) - digamma(sum lambda))
    from scipy.special import digamma, gammaln

    data = load_corpus(f"corpus:{two_topics}", **QUIET)
    r = lda.fit_lda(data, 1, max_iter=3)
    lam = 1.0 + data.train.to_dense().double().numpy().sum(0)  # (|V|,)
    test = data.test.to_dense().double().numpy()  # (N, |V|)
    elbo = test @ (digamma(lam) - digamma(lam.sum()))  # (N,) per-document ELBOs
    words = test.sum()
    assert r["perplexity_elbo"] == pytest.approx(math.exp(-elbo.sum() / words), rel=1e-9)
    assert r["nll_elbo"] == pytest.approx(-elbo.mean(), rel=1e-9)
    # scikit-learn's own bound adds E_q[log p(beta) - log q(beta)] = -KL(Dir(lambda) || Dir(1, ..., 1))
    v = len(lam)
    kl = (gammaln(lam.sum()) - gammaln(lam).sum() - gammaln(v)
          + ((lam - 1) * (digamma(lam) - digamma(lam.sum()))).sum())
    assert r["perplexity"] == pytest.approx(math.exp(-(elbo.sum() - kl) / words), rel=1e-9)
    assert r["perplexity"] > r["perplexity_elbo"]


def test_default_run_folder_names_the_corpus(tmp_path):
    c = Config(data="corpus:some/where/bbc_news/", model="nvdm")
    assert claims.default_out(c, tmp_path).name == "nvdm-bbc_news-001"
    assert claims.default_out(Config(), tmp_path).name == "vae-digits-001"


def test_stacked_sweep_of_nvdm_is_refused(two_topics, tmp_path, capsys):
    code = cli(["-q", "sweep", "--seeds", "2", "--data", f"corpus:{two_topics}", "--model", "nvdm", "--epochs", "1",
                "--out", str(tmp_path / "sw")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be trained stacked; use sequential" in err and not (tmp_path / "sw").exists()
