"""scikit-learn's LDA on the same corpus split as a document model: its perplexity and NPMI.

The perplexity is scikit-learn's own, exp(-bound / N) on the test counts, where the bound is
its variational lower bound on log p(d) (token-sequence probability, no multinomial
coefficient, like vaelab's). So it is an upper bound on LDA's perplexity, as the NVDM's
ELBO perplexity is on the NVDM's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import config as cfg
from . import documents
from .data import CorpusData, is_corpus_spec, load_corpus
from .data.corpus import to_scipy
from .errors import VaelabError


def fit_lda(data: CorpusData, components: int, *, seed: int = 0, max_iter: int = 50,
            top: int = documents.TOP_WORDS) -> dict[str, Any]:
    """Fit LDA (batch variational Bayes) on the training split; score the test split.

    Returns perplexity, unigram_perplexity and npmi (top words of each topic, training
    co-occurrence, as `vaelab evaluate` computes it), the topics' top words and timings.
    """
    from sklearn.decomposition import LatentDirichletAllocation  # lazy: slow import

    if components < 1:
        raise VaelabError(f"--components must be at least 1, got {components}")
    train, test = to_scipy(data.train), to_scipy(data.test)
    start = time.perf_counter()
    lda = LatentDirichletAllocation(n_components=components, learning_method="batch", max_iter=max_iter,
                                    random_state=seed)
    lda.fit(train)
    fit_seconds = time.perf_counter() - start
    topics = np.argsort(-lda.components_, axis=1, kind="stable")[:, :top]  # (K, top) word indices
    lengths = np.asarray(test.sum(axis=1)).ravel()
    uni = documents.unigram_log_probs(data.train).double().numpy()
    vocab = np.asarray(data.vocabulary)
    return {
        "model": "lda",
        "components": int(components),
        "data": data.name,
        "split": "test",
        "n": int(test.shape[0]),
        "words": int(lengths.sum()),
        "perplexity": float(lda.perplexity(test)),
        "unigram_perplexity": documents.perplexity(test @ uni, lengths),
        "npmi": float(documents.npmi(topics, data.train).mean()),
        "topics": [" ".join(vocab[t]) for t in topics],
        "fit_seconds": fit_seconds,
        "seconds": time.perf_counter() - start,
        "estimators": {
            "perplexity": "scikit-learn's LatentDirichletAllocation.perplexity: exp(-variational bound / N) on test",
            "npmi": f"mean NPMI of each topic's top-{top} words, training-document co-occurrence",
            "unigram_perplexity": "add-one smoothed unigram model fitted on the training split",
        },
        "settings": {"learning_method": "batch", "max_iter": int(max_iter), "random_state": int(seed)},
    }


def baseline(c: cfg.Config, components: int, out: str | Path, *, overwrite: bool = False, max_iter: int = 50,
             log=print) -> Path:
    """`vaelab baseline --model lda`: fit on the config's corpus and write OUT/baseline.json."""
    if not is_corpus_spec(c.data):
        raise VaelabError(f"the LDA baseline needs a corpus (--data corpus:PATH or 20newsgroups), not {c.data!r}")
    path = Path(out) / "baseline.json"
    if path.exists() and not overwrite:
        raise VaelabError(f"{path} already exists; use --overwrite to replace it")
    if components < 1:
        raise VaelabError(f"--components must be at least 1, got {components}")
    data = load_corpus(c.data, data_dir=c.data_dir, val_fraction=c.val_fraction, split_seed=c.seed,
                       vocab_size=c.vocab_size, stop_words=c.stop_words, min_df=c.min_df, max_df=c.max_df, log=log)
    result = fit_lda(data, components, seed=c.seed, max_iter=max_iter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path
