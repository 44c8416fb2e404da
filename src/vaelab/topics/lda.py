"""scikit-learn's LDA on the same corpus split as a document model: its perplexity and NPMI.

The perplexity is scikit-learn's own, exp(-bound / N) on the test counts, where the bound is
its variational lower bound on log p(docs) (token-sequence probability, no multinomial
coefficient, like vaelab's). So it is an upper bound on LDA's perplexity, as the NVDM's
ELBO perplexity is on the NVDM's. scikit-learn's bound also charges the whole topic-word term
E[log p(beta) - log q(beta)] to the test documents, which loosens it as the number of topics
grows; that is the number the library reports, and the one compared here.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

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
    return {
        "family": f"scikit-learn LatentDirichletAllocation, {components} topics",
        "components": int(components),
        "n": int(test.shape[0]),
        "words": int(lengths.sum()),
        "perplexity": ppl,
        # the same bound in nats per document, the unit of a document VAE's NLL
        "nll": math.log(ppl) * float(lengths.sum()) / test.shape[0],
        "nll_estimator": "LDA variational bound",
        "params": int(lda.components_.size),
        "unigram_perplexity": scores.perplexity(test @ uni, lengths),
        "npmi": float(coherence.npmi(topics, reference).mean()),
        "diversity": scores.diversity(order[:, :scores.TOP_DIVERSITY]),
        **_purity(lda, test, data.y_test),
        "topics": [" ".join(vocab[t]) for t in topics],
        "fit_seconds": fit_seconds,
        "seconds": time.perf_counter() - start,
        "estimators": {
            "perplexity": "scikit-learn's LatentDirichletAllocation.perplexity: exp(-variational bound / N) on test",
            "nll": "-(scikit-learn's variational bound) per test document, nats; an upper bound on -log p(d)",
            "npmi": f"mean NPMI of each topic's top-{top} words; {reference.describe()}",
            "diversity": f"unique words / all words in the topics' top-{scores.TOP_DIVERSITY} lists",
            "purity": f"mean over topics of the majority label's share of the min({scores.PURITY_DOCS}, N / K) "
                      "test documents with the largest proportion of it (lda.transform)",
            "unigram_perplexity": "add-one smoothed unigram model fitted on the training split",
        },
        "settings": {"learning_method": "batch", "max_iter": int(max_iter), "random_state": int(seed)},
    }

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
        raise VaelabError(f"the LDA baseline needs a corpus (data = corpus:PATH, bbc_news or 20newsgroups), not {c.data!r}")
    return fit_lda(data, options.components, seed=options.seed, max_iter=options.max_iter,
                   reference=coherence.reference(data, c.npmi_window, c.npmi_reference))
