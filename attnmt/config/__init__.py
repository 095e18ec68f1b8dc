"""Typed configuration: the one home of every default.

A run is described by :class:`Config` (the sections and their defaults are in
:mod:`.sections`, each field with its docstring). YAML files and ``--set key=value`` hold
only overrides; :func:`load_config` (in :mod:`.loading`) rejects anything that is not a
field, or has the wrong type, with a :class:`ConfigError` naming the key, the file and
the allowed values.
"""

from attnmt.config.loading import (
    KeyDoc,
    build_config,
    config_keys,
    decode_options,
    field_docs,
    load_config,
    parse_override,
    preset_path,
    read_yaml,
    rerank_options,
    save_config,
)
from attnmt.config.sections import (
    RNN_KEYS,
    TRANSFORMER_KEYS,
    ArchKind,
    AttentionConfig,
    BridgeKind,
    Config,
    ConfigError,
    DataConfig,
    DecodeOptions,
    DecoderKind,
    ModelConfig,
    RerankOptions,
    RNNKind,
    ScoreKind,
    SplitPaths,
    TrainConfig,
    WindowKind,
    other_family_keys,
    without_other_family,
)

__all__ = [
    "ArchKind",
    "AttentionConfig",
    "BridgeKind",
    "Config",
    "ConfigError",
    "KeyDoc",
    "DataConfig",
    "DecodeOptions",
    "decode_options",
    "DecoderKind",
    "ModelConfig",
    "RerankOptions",
    "RNNKind",
    "RNN_KEYS",
    "ScoreKind",
    "SplitPaths",
    "TRANSFORMER_KEYS",
    "TrainConfig",
    "WindowKind",
    "build_config",
    "config_keys",
    "field_docs",
    "load_config",
    "other_family_keys",
    "parse_override",
    "preset_path",
    "read_yaml",
    "rerank_options",
    "save_config",
    "without_other_family",
]
