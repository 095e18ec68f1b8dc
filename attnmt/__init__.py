"""attnmt: sequence-to-sequence models with every classic attention variant."""

from attnmt.config import Config, ConfigError, load_config
from attnmt.model import Seq2Seq, build_model
from attnmt.translator import Translation, Translator

__all__ = [
    "Config",
    "ConfigError",
    "Seq2Seq",
    "Translation",
    "Translator",
    "build_model",
    "load_config",
]
__version__ = "0.1.0"
