"""vaelab: variational autoencoders and their family, with honest likelihood numbers.

The names below are imported on first use (PEP 562), so `import vaelab` and `vaelab --help`
do not pay for torch and scikit-learn until something needs them.
"""

import sys
import types
from importlib import import_module
from typing import Any

from .config import Config
from .errors import VaelabError

__version__ = "0.1.0"
# public name -> (module, attribute in it)
_LAZY = {
    "encode": ("doc_topics", "encode"), "evaluate": ("api", "evaluate"), "load": ("api", "load"), "make_config": ("api", "make_config"),
    "plot": ("api", "plot"), "report": ("api", "report"), "sample": ("api", "sample"), "train": ("api", "train"),
    "MODELS": ("models", "MODELS"), "build_model": ("models", "build"),
    "OBJECTIVES": ("objectives", "OBJECTIVES"), "Bound": ("objectives", "Bound"), "iwae": ("objectives", "iwae"),
    "sgvb_a": ("objectives", "sgvb_a"), "sgvb_b": ("objectives", "sgvb_b"), "sweep": ("sweep", "sweep"),
}
__all__ = ["Config", "VaelabError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(import_module(f".{module}", __name__), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """vaelab.evaluate and vaelab.sweep name functions, though submodules of the same names exist."""

    def __setattr__(self, name: str, value: Any) -> None:
        # importing the submodule binds it onto the package; keep the public function there instead
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
