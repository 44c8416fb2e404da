"""Under torchrun on several nodes: does every node see the folder it must?

Two needs (docs/DISTRIBUTED.md, "Where the run folder must live"):
- `evaluate RUN` and `train --resume RUN` read the run on every process: every node must find the same files
  (a shared filesystem, or the same copy on each node). `same_files` compares each node's SHA-256 of the files
  with process 0's.
- a sweep writes from every process: its folder must be one folder, shared. `shared` has process 0 create a
  marker file where the sweep folder is (or would be made) and asks every node whether it sees it; the marker
  is removed before anything else happens.

Each is a collective: every process calls it at the same point, and every process raises the same VaelabError
when a node differs, before anything is written. On one node both hold by construction and cost one exchange.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from pathlib import Path
from typing import Sequence

import torch

from ..errors import VaelabError
from . import parallel

CPU = torch.device("cpu")


def _sha256(path: Path) -> str | None:
    """The file's SHA-256 as this node sees it; None when it is missing (or unreadable)."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def same_files(folder: str | Path, names: Sequence[str], world: parallel.World, why: str) -> None:
    """Raise on every process unless every node holds the same `names` in `folder` as process 0's node.

    The first process of each node reads the files (the others of a node share its filesystem). Files that no
    node has are left to the command's own error. `why`: what the command does with them, for the message."""
    if not world.distributed:
        return
    parallel.meet(world)
    folder = Path(folder)
    seen = {name: _sha256(folder / name) for name in names} if world.local_rank == 0 else None
    views = parallel.gather_json(None if seen is None else [socket.gethostname(), seen], world, CPU)
    host0, first = views[0]
    for rank, view in enumerate(views):
        if view is None or view[1] == first:
            continue
        host, own = view
        name = next(n for n in names if own[n] != first[n])
        differs = (f"lacks {name}, which process 0 (on {host0}) has" if own[name] is None else
                   f"has {name}, which process 0 (on {host0}) lacks" if first[name] is None else
                   f"holds another {name} than process 0 (on {host0})")
        parallel.leave()
        raise VaelabError(f"{folder} is not the same on every node: process {rank} (on {host}) {differs}; {why}, "
                          f"so put the run folder on a filesystem every node shares, or the same copy at the same "
                          f"path on every node")


def shared(folder: str | Path, world: parallel.World, why: str) -> None:
    """Raise on every process unless every node sees `folder` (or, not made yet, its nearest existing parent) as
    the one process 0 sees: process 0 creates a marker file there, every node looks for it, process 0 removes it."""
    if not world.distributed:
        return
    parallel.meet(world)
    folder = Path(folder).absolute()
    marker, failure = None, None
    if world.rank == 0:
        where = next(p for p in (folder, *folder.parents) if p.is_dir())
        marker = where / f".vaelab-shared-{secrets.token_hex(8)}"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError as e:
            marker, failure = None, e
    try:
        parallel.settle(world, failure)  # process 0 could not write there: every process stops with its line
        path = parallel.gather_json(None if marker is None else str(marker), world, CPU)[0]
        sees = os.path.exists(path) if world.local_rank == 0 else True
        views = parallel.gather_json([socket.gethostname(), sees], world, CPU)
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    blind = [(rank, host) for rank, (host, sees) in enumerate(views) if not sees]
    if blind:
        rank, host = blind[0]
        parallel.leave()
        raise VaelabError(f"{folder} is not shared between the nodes: process {rank} (on {host}) does not see "
                          f"{Path(path).parent} as process 0 (on {views[0][0]}) does; {why}, so put it on a "
                          f"filesystem every node shares")
