"""JSON as vaelab writes it: strict. NaN and infinity are not JSON (browsers, jq and most parsers refuse
them, while Python's json writes them by default), so a non-finite number is an error naming where it is,
and nothing is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import VaelabError


def dumps(value: Any, where: str, **kw: Any) -> str:
    """json.dumps(value, allow_nan=False, **kw); a non-finite number is one VaelabError naming `where` and the entry."""
    try:
        return json.dumps(value, allow_nan=False, **kw)
    except ValueError:
        found = _first_non_finite(value, "")
        if found is None:  # some other ValueError (a circular reference): not the user's to fix
            raise
        raise VaelabError(f"{where}: {found} is not a finite number, and JSON has no NaN or infinity; "
                          "nothing written") from None


def read_json(path: str | Path) -> Any:
    """Parsed JSON, or None when the file is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_json(path: str | Path, value: Any) -> None:
    """value as indented, strict JSON in path, written atomically."""
    atomic_write(path, (dumps(value, str(path), indent=2) + "\n").encode())


def _first_non_finite(value: Any, at: str) -> str | None:
    """'nll = nan' or 'runs[2].best_val = -inf': the first non-finite float inside value, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{at or 'the value'} = {value}"
    if isinstance(value, dict):
        items = ((f"{at}.{k}" if at else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{at}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, v in items:
        found = _first_non_finite(v, where)
        if found is not None:
            return found
    return None
