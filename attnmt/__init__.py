"""attnmt: sequence-to-sequence models with every classic attention variant."""

from attnmt.config import Config, ConfigError, DecodeOptions, load_config
from attnmt.models.build import build_model
from attnmt.models.seq2seq import Seq2Seq
from attnmt.translate.chatbot import Chatbot
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

__all__ = [
    "Chatbot",
    "Config",
    "ConfigError",
    "DecodeOptions",
    "Seq2Seq",
    "Translation",
    "Translator",
    "build_model",
    "load_config",
]
__version__ = "0.1.0"
