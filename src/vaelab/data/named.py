"""Corpora known by name (`--data bbc_news`): found the way MNIST's files are, or downloaded and checked.

Lookup, in order: --data-dir (the folder itself, or its <name>/), $VAELAB_DATA (likewise), the cache
(~/.cache/vaelab/<name>); when none holds the corpus, a download into the cache, every file checked by
SHA-256 and kept only when all match. Nothing is looked up relative to the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from . import idx


@dataclass(frozen=True)
class Source:
    """Where a named corpus comes from: a base URL and the SHA-256 of each of its files."""

    origin: str
    base: str
    sha256: dict[str, str]


# OCTIS's preprocessed BBC News (MIT licence), pinned to one commit of MIND-Lab/OCTIS so the bytes never move.
_OCTIS = "https://raw.githubusercontent.com/MIND-Lab/OCTIS/8f9a0ac5a12e3b72ecd77dcba4f181c77e4595f1/preprocessed_datasets"
NAMED = {
    "bbc_news": Source(
        origin="OCTIS's preprocessed BBC_News folder",
        base=f"{_OCTIS}/BBC_News/",
        sha256={
            "corpus.tsv": "f76c715babb4b1decbe0d929454d1f2fd902c67d118cecaf7fbf39f1b376c624",
            "vocabulary.txt": "7aaf24bf24073a3eeb6b255dac054a40c5b3deda3dbcb0317e502e8b9f2ec8aa",
            "metadata.json": "982dd8f8e5bfa3d573fad200a1b5b4c45440dd83110d2e38e9b2e5a06920dca1",
        },
    ),
}


def find(name: str, data_dir: str | None) -> Path:
    """The folder holding the corpus's corpus.tsv, downloading it into the cache when no folder does."""
    source = NAMED[name]
    dirs = idx.candidate_dirs(name, data_dir)
    for d in dirs:
        if (d / "corpus.tsv").is_file():
            return d
    cache = idx.cache_dir(name)
    try:
        idx.download_checked(source.base, source.sha256, cache)
    except DataError as e:
        raise DataError(f"{name}: not found (looked in {', '.join(map(str, dirs))}) and {e}; put {source.origin} "
                        f"({', '.join(source.sha256)}) in DIR/{name}/ and pass data_dir=DIR (--data-dir DIR) or set "
                        f"$VAELAB_DATA=DIR") from None
    return cache
