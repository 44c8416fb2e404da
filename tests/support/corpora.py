"""Small corpora written for a test: an OCTIS-style corpus.tsv (and vocabulary.txt), two-topic documents."""

from pathlib import Path

import numpy as np


def write_tsv(root: Path, lines: list[str], vocab: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if vocab is not None:
        (root / "vocabulary.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return root


def two_topic_lines(n: int = 40, seed: int = 0) -> list[str]:
    """Documents from two disjoint 'topics' (words a0..a9 or b0..b9), labelled by topic; 60/20/20% splits."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        topic = "ab"[i % 2]
        words = " ".join(f"{topic}{w}" for w in rng.integers(0, 10, 25))
        split = "train" if i < 0.6 * n else "val" if i < 0.8 * n else "test"
        out.append(f"{words}\t{split}\t{'alpha' if topic == 'a' else 'beta'}")
    return out
