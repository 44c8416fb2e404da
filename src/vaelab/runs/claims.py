"""Claiming a run folder: a free default name, and whether (and how) an existing folder may be taken."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..atomic import remove_temporaries, temporaries
from ..config import schema as cfg
from ..errors import AlreadyThere, VaelabError
from .folder import CONFIG, RunFolder
from .lock_owner import lock_owner


def default_out(c: cfg.Config, root: str | Path = "runs") -> Path:
    """runs/<model>-<data>-NNN, the first number not taken."""
    kind, _, path = c.data.partition(":")
    name = Path(path.rstrip("/")).name if kind == "corpus" and path else kind  # corpus:x/bbc_news -> bbc_news
    return first_free(Path(root), f"{c.model}-{name or kind}")


def first_free(root: Path, stem: str) -> Path:
    """root/<stem>-NNN with the first number not taken."""
    for i in range(1, 10_000):
        p = root / f"{stem}-{i:03d}"
        if not p.exists():
            return p
    raise VaelabError(f"too many folders named {stem}-NNN under {root}")


def is_run(path: Path) -> bool:
    return RunFolder(path).is_run()


def check_claim(out: Path, *, overwrite: bool) -> str:
    """How out may be claimed: "new", "replace" (--overwrite) or "retry" (a failed start); raises if not at all."""
    folder = RunFolder(out)
    if folder.is_failed_start():
        if folder.in_use():  # a live run in its first epoch looks the same
            raise VaelabError(f"{out} is being trained by another process{lock_owner(out)} (its first epoch is not "
                              "saved yet)")
        return "retry"  # stopped before its first checkpoint: the same command may start it again
    if out.exists() and (folder.is_run() or any(p not in temporaries(out, CONFIG) for p in out.iterdir())):
        if not overwrite:
            raise AlreadyThere(f"{out} already holds a run; resume=True continues it, overwrite=True replaces it",
                               out, "run")
        if not folder.is_run():
            raise VaelabError(f"{out} is a non-empty folder that is not a vaelab run; refusing to overwrite it")
        return "replace"
    return "new"  # absent, empty, or holding only a config.toml temporary (a kill at a run's first write)


def claim(out: Path, *, overwrite: bool) -> str:
    """Make the run folder, refusing to clobber an existing run unless asked to; returns check_claim's answer."""
    how = check_claim(out, overwrite=overwrite)
    if how in ("replace", "retry"):
        shutil.rmtree(out)
    remove_temporaries(out, CONFIG)
    out.mkdir(parents=True, exist_ok=True)
    return how
