"""vaelab: variational autoencoders and their family, with honest likelihood numbers.

The names below are imported on first use (PEP 562), so `import vaelab` and `vaelab --help`
do not pay for torch and scikit-learn until something needs them.
"""

from importlib import import_module
from typing import Any

from .config.schema import Config
from .errors import VaelabError

__version__ = "0.1.0"
# public name -> (module, attribute in it)
_LAZY = {
    "encode": ("topics.encode", "encode"), "evaluate": ("api", "evaluate"), "load": ("api", "load"),
    "make_config": ("api", "make_config"), "plot": ("api", "plot"), "report": ("api", "report"),
    "sample": ("api", "sample"), "train": ("api", "train"),
    "MODELS": ("models", "MODELS"), "build_model": ("models", "build"),
    "OBJECTIVES": ("estimators.objectives", "OBJECTIVES"), "Bound": ("estimators.objectives", "Bound"),
    "iwae": ("estimators.objectives", "iwae"), "sgvb_a": ("estimators.objectives", "sgvb_a"),
    "sgvb_b": ("estimators.objectives", "sgvb_b"), "sweep": ("sweeps.sweep", "sweep"),
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
