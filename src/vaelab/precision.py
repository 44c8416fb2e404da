"""Lower-precision matrix products for evaluation, opt-in: `vaelab evaluate --precision tf32|bf16`.

The networks' matrix products are what costs; the distributions (log-densities, logsumexp over
samples, the running sums) stay in float32/float64 either way, because models cast network
outputs to float32 before building distributions. The default, fp32, is exact float32 throughout.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import VaelabError

PRECISIONS = ("fp32", "tf32", "bf16")


@contextmanager
def matmuls(kind: str, device: torch.device) -> Iterator[None]:
    """Run the block with the networks' matrix products in `kind` precision on `device`."""
    if kind not in PRECISIONS:
        raise VaelabError(f"precision must be one of {', '.join(PRECISIONS)}, not {kind!r}")
    if kind == "fp32":
        yield
    elif kind == "tf32":
        if device.type != "cuda":
            raise VaelabError("tf32 is a CUDA precision; use fp32 or bf16 on the CPU")
        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    else:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
