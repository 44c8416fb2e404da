"""vaelab: variational autoencoders and their family, with honest likelihood numbers."""

from .api import evaluate, load, make_config, plot, report, sample, train
from .config import Config
from .errors import VaelabError
from .models import MODELS, build as build_model
from .objectives import OBJECTIVES, Bound, iwae, sgvb_a, sgvb_b
from .sweep import sweep

__version__ = "0.1.0"
__all__ = ["Config", "VaelabError", "MODELS", "OBJECTIVES", "Bound", "build_model", "evaluate", "iwae", "load",
           "make_config", "plot", "report", "sample", "sgvb_a", "sgvb_b", "sweep", "train"]
