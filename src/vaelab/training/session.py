"""One training session: what a run may change when it is resumed.

RESUMABLE is the one rule for `vaelab.train(resume=RUN, ...)` and `vaelab train --resume RUN`: a resumed
run continues as it was configured, so only the keys that alter neither the model nor the data it sees may
be given again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import schema as cfg
from ..errors import VaelabError

# what may change when a run is resumed: nothing that alters the model or the data it sees
RESUMABLE = frozenset({"epochs", "device", "patience", "eval_k", "precision", "save_every", "max_minutes"})


def check_resume(overrides: dict[str, Any], config: cfg.Config | str | Path | None = None) -> None:
    """Refuse, before the run folder is touched, a resume that would change more than RESUMABLE
    (or that names a config besides the run: the run's own config.toml is the config)."""
    fixed = sorted(set(overrides) - RESUMABLE)
    if config is not None or fixed:
        raise VaelabError(f"resume continues a run as configured; only {', '.join(sorted(RESUMABLE))} "
                          f"may change (got {', '.join(fixed) or 'config'})")
