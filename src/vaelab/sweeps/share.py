"""Which models of a sweep each of P processes trains (`torchrun --nproc-per-node P -m vaelab sweep ...`).

Every process computes the same answer from the sweep's groups (sweep.groups: lists of member indices):

- at least as many groups as processes: whole groups, the largest first, each to the process with the fewest
  models so far (the lowest rank on a tie);
- fewer groups than processes: groups are split so that every process gets a piece. Each group starts with one
  process; a further process goes, one at a time, to the group with the most models per process (the first such
  group on a tie) while that group can still be split; a group's models are then cut into as many contiguous
  pieces, as near equal as can be, one per process in order. Processes left over (fewer models than processes)
  train nothing.

A piece is (group index, member indices); models of one group on one process train stacked together. The models
do not talk to each other, so a model's numbers do not depend on which process trains it (sweeps/stacked.py).
"""

from __future__ import annotations

Piece = tuple[int, list[int]]  # (group index, the sweep's member indices it trains)


def share(parts: list[list[int]], processes: int) -> list[list[Piece]]:
    """For each rank, the pieces of groups it trains."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    out: list[list[Piece]] = [[] for _ in range(processes)]
    if len(parts) >= processes:
        load = [0] * processes
        for g in sorted(range(len(parts)), key=lambda g: -len(parts[g])):  # stable: earlier groups first on a tie
            rank = min(range(processes), key=lambda r: (load[r], r))
            out[rank].append((g, list(parts[g])))
            load[rank] += len(parts[g])
        for pieces in out:
            pieces.sort()  # a process trains its groups in the sweep's order
        return out
    count = [1] * len(parts)  # processes per group
    while sum(count) < processes:
        open_ = [g for g in range(len(parts)) if count[g] < len(parts[g])]
        if not open_:
            break
        g = max(open_, key=lambda g: (len(parts[g]) / count[g], -g))
        count[g] += 1
    rank = 0
    for g, members in enumerate(parts):
        n, c = len(members), count[g]
        cuts = [n * i // c for i in range(c + 1)]
        for i in range(c):
            out[rank].append((g, members[cuts[i]:cuts[i + 1]]))
            rank += 1
    return out
