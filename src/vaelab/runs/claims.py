"""Claiming a run folder to train in: a free default name, one process per folder, vaelab's mark on what it
starts, overwrite's swap.

A process trains in a run folder only while it holds the folder's lock (folder_lock.py), from the claim
until training and finishing end: `train --out`, `--overwrite`, `--resume` and every model of a sweep
take it, and each refuses in one line while another process holds it. Whatever a claim decides, it
decides under the lock, so two processes claiming one folder at once can never both win.

The start mark (folder.STARTING) is the first file of a run vaelab starts; the run's first checkpoint
removes it (commit(), called by training/epochs.py's EpochWriter). A folder holding the mark and no
checkpoint is a failed start, which a claim clears without overwrite, and only when every file in it
is one a start writes. Nothing else is replaced unasked: a run whose checkpoint was deleted is a run.

overwrite keeps the old run until the new one has committed its first epoch. The new run's folder is
made as a hidden sibling (.NAME.vaelab-XXXXXXXX), locked, marked with that name, and exchanged with the
old folder in one rename (renameat2's RENAME_EXCHANGE), so RUN always names one whole run while the old
one waits in the sibling. The first checkpoint deletes the sibling; an error before it exchanges the two
back (Claim.__exit__); after a kill before it, the next claim or resume of RUN does so (settle()).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from ..atomic import TMP_SUFFIX, remove_temporaries
from ..config import schema as cfg
from ..errors import AlreadyThere, VaelabError
from .folder import (
    CONFIG,
    DATA_ARRAYS,
    DATA_SOURCE,
    DATA_VIEW,
    EPOCHS,
    METRICS,
    PROVENANCE,
    STARTING,
    TENSORBOARD,
    WEIGHTS,
    RunFolder,
)
from .folder_lock import busy, lock
from .folder_swap import exchange
from .json_text import dumps

# all a start writes, with its folders
START_FILES = (STARTING, CONFIG, METRICS, WEIGHTS, PROVENANCE, DATA_ARRAYS, DATA_SOURCE, DATA_VIEW)


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


class Claim:
    """A run folder this process trains in, locked until the with-block ends. how: "new", "retry" (a failed
    start cleared), "replace" (overwrite; `kept` holds the old run until the first checkpoint) or "resume"."""

    def __init__(self, path: Path, how: str, fds: tuple[int, ...] = (), kept: Path | None = None):
        self.path, self.how, self.fds, self.kept = Path(path), how, list(fds), kept

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            folder = RunFolder(self.path)
            if self.kept is not None and self.fds and folder.is_failed_start():
                if kind is not None:  # the new run failed before its first checkpoint: the old one comes back
                    _undo_overwrite(folder, self.kept)
            elif self.fds and folder.checkpoint.exists():
                commit(folder)  # a mark left by a failed write after the first checkpoint
        finally:
            self.release()

    def release(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def claim(out: Path, *, overwrite: bool) -> Claim:
    """Lock out for a new run, making the folder if needed. Raises, changing nothing, when another process
    holds it, when it holds a run (unless overwrite) or anything vaelab did not write."""
    out.mkdir(parents=True, exist_ok=True)
    folder, fd = RunFolder(out), _lock(out)
    fds = [fd]
    try:
        fd = fds[0] = settle(folder, fd)
        entries = [p for p in out.iterdir() if not _is_temporary(p, CONFIG)]  # a kill at the very first write
        foreign = _foreign(out) if folder.is_failed_start() else None
        if not entries or foreign == []:  # empty, or a failed start of files vaelab wrote: start here
            how = "retry" if entries else "new"
            _clear(out, entries)
            remove_temporaries(out, CONFIG)
            _mark(out)
            _remove_stale_siblings(out)
            return Claim(out, how, fds)
        if not (folder.is_run() or folder.start_mark.exists()):
            raise VaelabError(f"{out} is a non-empty folder that is not a vaelab run; refusing to "
                              f"{'overwrite it' if overwrite else 'train in it'}")
        if not overwrite:
            if foreign:
                raise VaelabError(f"{out} holds a failed start and files vaelab did not write ({', '.join(foreign)});"
                                  f" move them away, or overwrite it")
            raise AlreadyThere(f"{out} already holds a run; resume=True continues it, overwrite=True replaces it",
                               out, "run")
        new = _new_sibling(out)
        try:
            fds.append(_lock(new))
            _mark(new, replaces=new.name)
            exchange(new, _real(out))  # out is now the new run, new the old one
        except BaseException:
            if not RunFolder(new).is_run():  # not exchanged: the new folder holds only the mark
                _remove_tree(new)
            raise
        _remove_stale_siblings(out)
        return Claim(out, "replace", (fds[1], fds[0]), kept=new)
    except BaseException:
        for f in fds:
            os.close(f)
        raise


def claim_resume(run: Path) -> Claim:
    """Lock run to continue it: "resume", or "retry" for a failed start (trained again from epoch 0). An
    interrupted overwrite is undone first. Raises, changing nothing, for a run without its checkpoint."""
    if not run.is_dir():
        raise VaelabError(f"{run} is not a vaelab run folder (no {CONFIG})")
    folder = RunFolder(run)
    fd = _lock(run)
    try:
        fd = settle(folder, fd)
        if folder.is_failed_start():
            return Claim(run, "retry", (fd,))
        if folder.is_run() and not folder.checkpoint.exists():
            raise VaelabError(f"{run} has no {folder.checkpoint.name} (was it deleted?), so its training cannot "
                              f"continue; its weights and evaluations are kept. Train a new run, or overwrite this one")
        return Claim(run, "resume", (fd,))
    except BaseException:
        os.close(fd)
        raise


def commit(folder: RunFolder) -> None:
    """The run's first checkpoint is written: it is a start no more, and an old run an overwrite kept goes."""
    mark = _read_mark(folder)
    if mark is None:
        return
    kept = _kept(folder, mark)
    if kept is not None:
        _remove_tree(kept)
    folder.start_mark.unlink(missing_ok=True)


def settle(folder: RunFolder, fd: int) -> int:
    """Finish what a killed process left half done in folder (locked by fd); returns the descriptor that
    locks the folder then (another one when an overwrite was undone)."""
    mark = _read_mark(folder)
    if mark is None:
        return fd
    if folder.checkpoint.exists():  # the first checkpoint committed, and the kill came before the mark went
        commit(folder)
        return fd
    kept = _kept(folder, mark)
    if kept is None or not kept.is_dir():
        return fd  # a failed start
    try:
        kept_fd = lock(kept)
    except BlockingIOError:
        raise busy(folder.path) from None
    try:
        _undo_overwrite(folder, kept)
    except BaseException:
        os.close(kept_fd)
        raise
    os.close(fd)
    return kept_fd


def _undo_overwrite(folder: RunFolder, kept: Path) -> None:
    """The old run back at its name, and the new one that never committed an epoch gone."""
    exchange(kept, _real(folder.path))
    _remove_tree(kept)


def _lock(path: Path) -> int:
    try:
        return lock(path)
    except BlockingIOError:
        raise busy(path) from None


def _mark(path: Path, replaces: str | None = None) -> None:
    """Write the start mark. A plain write, not atomic_write (whose fsync would be one more write for a kill
    to land on): a mark cut short reads as {}, a failed start all the same, and an overwrite's mark is
    written before its folder takes the run's name."""
    with open(path / STARTING, "w") as f:
        f.write(dumps({"replaces": replaces} if replaces else {}, str(path / STARTING)))


def _read_mark(folder: RunFolder) -> dict | None:
    """The start mark's JSON ({} when unreadable), None without one."""
    if not folder.start_mark.is_file():
        return None
    try:
        mark = json.loads(folder.start_mark.read_text())
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _kept(folder: RunFolder, mark: dict) -> Path | None:
    """The sibling holding the old run an overwrite keeps; only a name vaelab makes, never a path elsewhere."""
    name = mark.get("replaces")
    real = _real(folder.path)
    if not isinstance(name, str) or not re.fullmatch(rf"\.{re.escape(real.name)}\.vaelab-[0-9a-f]{{8}}", name):
        return None
    return real.parent / name


def _new_sibling(out: Path) -> Path:
    real = _real(out)
    while True:
        path = real.parent / f".{real.name}.vaelab-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _remove_stale_siblings(out: Path) -> None:
    """Siblings a kill left before an exchange (a mark alone) or while undoing one (a failed start)."""
    real = _real(out)
    mark = _read_mark(RunFolder(out)) or {}
    for path in real.parent.glob(f".{_glob_escape(real.name)}.vaelab-*"):
        if path.name == mark.get("replaces") or path.is_symlink() or not path.is_dir():
            continue
        if _kept(RunFolder(out), {"replaces": path.name}) and RunFolder(path).is_failed_start() \
                and _foreign(path) == []:
            try:
                fd = lock(path)
            except BlockingIOError:  # another process's overwrite of a folder of the same name
                continue
            try:
                _remove_tree(path)
            except OSError:  # tidying only: what cannot be removed now is tried again at the next claim
                pass
            finally:
                os.close(fd)


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _is_temporary(path: Path, name: str = "*") -> bool:
    """A temporary atomic_write left (.NAME.XXXXXXXX.tmp), for any file or for the one called name."""
    prefix = "." if name == "*" else f".{name}."
    return path.name.startswith(prefix) and path.name.endswith(TMP_SUFFIX) and path.is_file() \
        and not path.is_symlink()


def _foreign(path: Path) -> list[str]:
    """What a failed start at path holds that no start writes (a user's notes, a link): never cleared unasked."""
    out = []
    for p in sorted(path.iterdir()):
        plain = p.is_file() and not p.is_symlink()
        if (plain and p.name in START_FILES) or _is_temporary(p):
            continue
        if p.name in (EPOCHS, TENSORBOARD) and p.is_dir() and not p.is_symlink():
            files = [q for q in p.rglob("*") if q.is_symlink() or not q.is_dir()]
            ok = (lambda q: re.fullmatch(r"epoch-\d+\.safetensors", q.name)) if p.name == EPOCHS else \
                (lambda q: q.name.startswith("events.out.tfevents."))
            if all(not q.is_symlink() and (ok(q) or _is_temporary(q)) for q in files):
                continue
        out.append(p.name)
    return out


def _clear(path: Path, entries: list[Path]) -> None:
    """Delete a failed start's files, keeping the folder itself (this process's lock is on it)."""
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
