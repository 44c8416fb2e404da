"""scikit-learn's LDA on the same corpus split as a document model: its perplexity and NPMI.

scikit-learn's perplexity is exp(-bound / N) on the test counts, where the bound is its variational
lower bound on log p(docs) (token-sequence probability, no multinomial coefficient, like vaelab's).
That bound also charges the whole topic-word term E_q[log p(beta | eta) - log q(beta | lambda)]
= -sum_k KL(Dir(lambda_k) || Dir(eta)) to the test documents, which loosens it as the number of
topics grows: it is not the kind of number a document VAE's perplexity is. Without that term, what
remains is a sum of per-document ELBOs,
    E_q(beta)[E_q(theta, z)[log p(d | theta, z, beta)] - KL(q(theta) || p(theta))],
each a lower bound on log p(d) under the fitted topics' posterior predictive; perplexity_elbo is
exp(-their sum / N), the same kind of bound as a VAE's ELBO perplexity, and nll_elbo the same per
document. Both are reported; `compare` shows the per-document ones.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch.distributions import Dirichlet, kl_divergence

from ..config import schema as cfg
from ..data import CorpusData, is_corpus
from ..data.corpus import to_scipy
from ..errors import VaelabError
from . import coherence, scores


def fit_lda(data: CorpusData, components: int, *, seed: int = 0, max_iter: int = 100,
            top: int = scores.TOP_WORDS, reference: coherence.Reference | None = None) -> dict[str, Any]:
    """Fit LDA (batch variational Bayes) on the training split; score the test split.

    Returns perplexity, unigram_perplexity and npmi (top words of each topic, co-occurrence in `reference`,
    by default the training split's documents, as `vaelab evaluate` computes it), the topics' top words and timings.
    """
    from sklearn.decomposition import LatentDirichletAllocation  # lazy: slow import

    if components < 1:
        raise VaelabError(f"components must be at least 1, got {components}")
    reference = reference if reference is not None else coherence.reference(data)
    train, test = to_scipy(data.train), to_scipy(data.test)
    start = time.perf_counter()
    lda = LatentDirichletAllocation(n_components=components, learning_method="batch", max_iter=max_iter,
                                    random_state=seed)
    lda.fit(train)
    fit_seconds = time.perf_counter() - start
    order = np.argsort(-lda.components_, axis=1, kind="stable")
    topics = order[:, :top]  # (K, top) word indices
    lengths = np.asarray(test.sum(axis=1)).ravel()
    uni = scores.unigram_log_probs(data.train).double().numpy()
    vocab = np.asarray(data.vocabulary)
    ppl = float(lda.perplexity(test))
    words = float(lengths.sum())
    doc_bound = -math.log(ppl) * words - topic_word_term(lda)  # sum over test documents of their ELBOs, nats
    return {
        "family": f"scikit-learn LatentDirichletAllocation, {components} topics",
        "components": int(components),
        "n": int(test.shape[0]),
        "words": int(lengths.sum()),
        "perplexity": ppl,
        # the same bound in nats per document, the unit of a document VAE's NLL
        "nll": math.log(ppl) * words / test.shape[0],
        "nll_estimator": "LDA variational bound",
        "perplexity_elbo": math.exp(-doc_bound / words),
        "nll_elbo": -doc_bound / test.shape[0],
        "nll_elbo_estimator": "LDA per-document ELBO",
        "params": int(lda.components_.size),
        "unigram_perplexity": scores.perplexity(test @ uni, lengths),
        "npmi": float(coherence.npmi(topics, reference).mean()),
        "diversity": scores.diversity(order[:, :scores.TOP_DIVERSITY]),
        **_purity(lda, test, data.y_test),
        "topics": [" ".join(vocab[t]) for t in topics],
        "fit_seconds": fit_seconds,
        "seconds": time.perf_counter() - start,
        "estimators": {
            "perplexity": "scikit-learn's LatentDirichletAllocation.perplexity: exp(-variational bound / N) on test; "
                          "the bound includes the topic-word term -sum_k KL(Dir(lambda_k) || Dir(eta))",
            "nll": "-(scikit-learn's variational bound) per test document, nats (topic-word KL included)",
            "perplexity_elbo": "exp(-sum of the test documents' ELBOs / N): scikit-learn's bound without the "
                               "topic-word term, the same kind of bound as a VAE's ELBO perplexity",
            "nll_elbo": "-(the test documents' mean ELBO), nats per document; an upper bound on -log p(d) under "
                        "the fitted topics",
            "npmi": f"mean NPMI of each topic's top-{top} words; {reference.describe()}",
            "diversity": f"unique words / all words in the topics' top-{scores.TOP_DIVERSITY} lists",
            "purity": f"mean over topics of the majority label's share of the min({scores.PURITY_DOCS}, N / K) "
                      "test documents with the largest proportion of it (lda.transform)",
            "unigram_perplexity": "add-one smoothed unigram model fitted on the training split",
        },
        "settings": {"learning_method": "batch", "max_iter": int(max_iter), "random_state": int(seed)},
    }

def topic_word_term(lda) -> float:
    """E_q[log p(beta | eta) - log q(beta | lambda)] = -sum_k KL(Dir(lambda_k) || Dir(eta)): the part of
    scikit-learn's bound (its _approx_bound's last term) that belongs to the topics, not to any document."""
    lam = torch.as_tensor(lda.components_, dtype=torch.float64)  # (K, |V|) variational Dirichlet parameters
    eta = torch.full_like(lam, float(lda.topic_word_prior_))
    return -float(kl_divergence(Dirichlet(lam), Dirichlet(eta)).sum())


def _purity(lda, test, labels) -> dict[str, float]:
    """{"purity": ...} of the test documents' topic proportions, when the corpus has labels."""
    if labels is None:
        return {}
    theta = lda.transform(test)  # (N, K)
    top = scores.purity_docs(*theta.shape)
    return {"purity": float(scores.label_purity(theta, labels.numpy(), top).mean())}


def fit(c: cfg.Config, data: CorpusData, options) -> dict[str, Any]:
    """The `lda` entry of baselines.BASELINES: fit_lda with the command's --components, --max-iter and --seed."""
    if not is_corpus(data):
        raise VaelabError(f"the LDA baseline needs a corpus (data = corpus:PATH, bbc_news or 20newsgroups), "
                          f"not {c.data!r}")
    return fit_lda(data, options.components, seed=options.seed, max_iter=options.max_iter,
                   reference=coherence.reference(data, c.npmi_window, c.npmi_reference))
