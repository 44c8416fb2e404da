"""Numbers and tables for document models: perplexity, the unigram baseline, topic quality, topics.

Perplexity of a set of documents from per-document log p(d) (nats, no multinomial coefficient,
see distributions.BagOfWords) and lengths N_d:
    corpus perplexity        exp(-sum_d log p(d) / sum_d N_d)
    per-document perplexity  exp(mean_d(-log p(d) / N_d))          (the NVDM paper's)
With log p(d) replaced by the ELBO (or IWAE-k) both are upper bounds on the true perplexity.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data import CorpusData, rows
from ..data.corpus import to_scipy
from ..terminal import printable
from . import coherence

TOP_WORDS = 10  # words per topic for NPMI, as in Lau et al. (2014) and most topic-model papers
TOP_DIVERSITY = 25  # words per topic for topic diversity (Dieng et al. 2020)
PURITY_DOCS = 30  # documents per topic for label purity


def unigram_log_probs(counts: torch.Tensor) -> torch.Tensor:
    """log p(w) of the add-one smoothed unigram model fitted on counts (N, |V|), as (|V|,) float32."""
    total = torch.as_tensor(to_scipy(counts).sum(axis=0), dtype=torch.float64).reshape(-1)
    return ((total + 1.0) / (total.sum() + total.numel())).log().float()


def perplexity(log_p: np.ndarray, lengths: np.ndarray) -> float:
    """Corpus perplexity exp(-sum_d log p(d) / sum_d N_d)."""
    return math.exp(-float(np.sum(log_p)) / float(np.sum(lengths)))


def perplexity_per_doc(log_p: np.ndarray, lengths: np.ndarray) -> float:
    """The NVDM paper's exp(mean_d(-log p(d) / N_d))."""
    return math.exp(float(np.mean(-np.asarray(log_p) / np.asarray(lengths))))


def ends(weights: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Word indices with the largest and the smallest weights in each column of (|V|, K): two (K, top) arrays."""
    order = np.argsort(-weights, axis=0, kind="stable")  # (|V|, K), largest first
    return order[:top].T, order[::-1][:top].T


@torch.no_grad()
def codes(model: nn.Module, counts: torch.Tensor, device: torch.device | str = "cpu", batch: int = 1024) -> np.ndarray:
    """Posterior means E_q[z|d] of every document, (N, K)."""
    model.eval()
    out = [model.embed(rows(counts, torch.arange(i, min(i + batch, len(counts))), 1.0).to(device)).cpu()
           for i in range(0, len(counts), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.latent_dim), dtype=np.float32)


def signed(model: nn.Module) -> bool:
    """True when a topic is a direction with two ends (NVDM's R); False for topic models (their columns' tops)."""
    return getattr(model, "signed_topics", True)


def topic_lists(model: nn.Module, top: int) -> np.ndarray:
    """The model's topics as word-index lists, (T, top): the top of each column of topic_weights, and for a
    signed model also the bottom (T = 2K), in that order."""
    pos, neg = ends(model.topic_weights.detach().cpu().numpy(), top)
    return np.concatenate([pos, neg]) if signed(model) else pos


def doc_scores(model: nn.Module, counts: torch.Tensor, device: torch.device | str = "cpu") -> np.ndarray:
    """How strongly each document loads on each topic of topic_lists, (N, T): topic proportions for a topic
    model, the posterior mean and its negation for a signed model."""
    if signed(model):
        z = codes(model, counts, device)
        return np.concatenate([z, -z], axis=1)
    model.eval()
    out = [model.mixture(rows(counts, torch.arange(i, min(i + 1024, len(counts))), 1.0).to(device)).cpu()
           for i in range(0, len(counts), 1024)]
    return torch.cat(out).numpy()


def diversity(top: np.ndarray) -> float:
    """Topic diversity: unique words over all words in the topics' top lists (T, n), in (0, 1] (Dieng et al. 2020)."""
    top = np.asarray(top)
    return float(len(np.unique(top)) / top.size)


def topic_table(model: nn.Module, data: CorpusData, top: int = TOP_WORDS,
                device: torch.device | str = "cpu") -> list[dict]:
    """One row per topic, the largest first.

    NVDM (signed): dim (1-based), sd (std of the posterior means over training documents), and the top
    words at the + end (largest R[:, k]) and at the - end (most negative R[:, k]), most varying first.
    Topic models: dim, share (mean proportion over training documents), plus (top words), minus [].
    """
    weights = model.topic_weights.detach().cpu().numpy()  # (|V|, K)
    pos, neg = ends(weights, top)
    vocab = np.asarray(data.vocabulary)
    if not signed(model):
        share = doc_scores(model, data.train, device).mean(axis=0)
        return [{"dim": int(k) + 1, "share": float(share[k]), "plus": vocab[pos[k]].tolist(), "minus": []}
                for k in np.argsort(-share, kind="stable")]
    sd = codes(model, data.train, device).std(axis=0)
    return [{"dim": int(k) + 1, "sd": float(sd[k]), "plus": vocab[pos[k]].tolist(), "minus": vocab[neg[k]].tolist()}
            for k in np.argsort(-sd, kind="stable")]


def format_table(table: list[dict]) -> str:
    """The topic table as plain text: one line per topic (a line pair per signed dimension)."""
    def words(ws: list[str]) -> str:  # a word is data: its control characters (a newline too) are escaped
        return " ".join(printable(w) for w in ws)

    lines = []
    for row in table:
        if "share" in row:
            lines.append(f"topic {row['dim']:<3d} {100 * row['share']:4.1f}%  {words(row['plus'])}")
            continue
        lines.append(f"z{row['dim']:<3d} sd {row['sd']:.2f}  + {words(row['plus'])}")
        lines.append(f"{'':13s}- {words(row['minus'])}")
    return "\n".join(lines)


def label_purity(z: np.ndarray, labels: np.ndarray, top: int) -> np.ndarray:
    """For each latent dimension, the share of the majority label among the `top` documents scoring highest on it."""
    out = np.empty(z.shape[1])
    for k in range(z.shape[1]):
        best = labels[np.argsort(-z[:, k], kind="stable")[:top]]
        out[k] = np.bincount(best).max() / len(best)
    return out


def metrics(model: nn.Module, data: CorpusData, x: torch.Tensor, labels: torch.Tensor | None = None,
            reference: coherence.Reference | None = None) -> Callable[[object], dict]:
    """The document numbers of `vaelab evaluate`, from the per-document bounds of x (N, |V|) dense counts.

    Topic quality (NPMI, diversity; label purity of x's documents when their labels are given) is read from
    topic_lists, the same way for every model (and for LDA, topics/lda.py). NPMI counts co-occurrence in `reference`
    (coherence.reference; by default the training split's whole documents).

    Returns a function of evaluate.PointBounds, so the bounds are computed once.
    """
    def compute(pb) -> dict:
        lengths = x.sum(1).double().cpu().numpy()  # (N,) tokens per document
        uni = unigram_log_probs(data.train).double().to(x.device)
        uni_lp = (x.double() @ uni).cpu().numpy()  # (N,) log p(d) under the unigram model
        out = {
            "words": int(lengths.sum()),
            "perplexity": perplexity(pb.elbo, lengths),
            "perplexity_doc": perplexity_per_doc(pb.elbo, lengths),
            "perplexity_is": perplexity(pb.iwae, lengths),
            "unigram_perplexity": perplexity(uni_lp, lengths),
        }
        est = {
            "perplexity": "exp(-sum ELBO / sum N_d) over the split (an upper bound on the perplexity)",
            "perplexity_doc": "exp(mean over documents of -ELBO / N_d), the NVDM paper's per-document perplexity",
            "perplexity_is": "exp(-sum IWAE-k / sum N_d), with the importance-sampled log p(d)",
            "unigram_perplexity": "add-one smoothed unigram model fitted on the training split",
        }
        if hasattr(model, "topic_weights"):
            ref = reference if reference is not None else coherence.reference(data)
            out |= quality(model, x, labels, ref)
            est |= {k: v for k, v in quality_notes(model, ref).items() if k in out}
        out["estimators"] = est
        return out

    return compute


def quality(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, reference: coherence.Reference) -> dict:
    """npmi, diversity and (with labels) purity of the model's topics; x are the scored documents (N, |V|)."""
    out = {"npmi": float(coherence.npmi(topic_lists(model, TOP_WORDS), reference).mean()),
           "diversity": diversity(topic_lists(model, TOP_DIVERSITY))}
    if labels is not None:
        scores = doc_scores(model, x.cpu(), x.device)  # (N, T), computed where the model is
        out["purity"] = float(label_purity(scores, labels.cpu().numpy(), purity_docs(*scores.shape)).mean())
    return out


def purity_docs(n_docs: int, n_topics: int) -> int:
    """Documents per topic for label purity: PURITY_DOCS, or fewer, so no topic takes more than N / T of them."""
    return max(1, min(PURITY_DOCS, n_docs // n_topics))


def quality_notes(model: nn.Module, reference: coherence.Reference) -> dict:
    """The estimator notes of quality()'s numbers."""
    lists = "both ends of every column of R" if signed(model) else "every topic"
    return {
        "npmi": f"mean NPMI of the top-{TOP_WORDS} words of {lists}; {reference.describe()}",
        "diversity": f"unique words / all words in the top-{TOP_DIVERSITY} lists of {lists}",
        "purity": f"mean over the topics ({lists}) of the majority label's share of the min({PURITY_DOCS}, N / T) "
                  "scored documents loading most on it (topic proportions; NVDM: posterior mean, either sign)",
    }

