"""Config: typed defaults, YAML overrides and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnmt.config import Config, ConfigError, field_docs, load_config, parse_override, save_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_load_without_a_file() -> None:
    assert load_config() == Config()


def test_yaml_overrides_and_set(tmp_path: Path) -> None:
    path = write(
        tmp_path, "model:\n  rnn: lstm\n  attention:\n    score: dot\ntrain:\n  lr: 1e-3\n"
    )
    config = load_config(path, ["model.layers=2", "train.max_minutes=0.5"])
    assert config.model.rnn == "lstm"
    assert config.model.attention.score == "dot"
    assert config.model.attention.window == "global"  # untouched default
    assert config.model.layers == 2
    assert config.train.lr == pytest.approx(1e-3)
    assert config.train.max_minutes == 0.5


def test_unknown_key_names_key_file_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  attention:\n    scor: dot\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "model.attention.scor" in message
    assert "score" in message and "window" in message
    assert "\n" not in message


def test_wrong_value_lists_the_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  attention:\n    score: additive\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for name in ("dot", "scaled_dot", "general", "concat", "location", "multihead", "additive"):
        assert name in message


@pytest.mark.parametrize("source", ["yaml", "set"])
def test_self_score_points_to_the_transformer(tmp_path: Path, source: str) -> None:
    """ "self" is in the notes' score family, but it is an architecture here: the error
    says which key to set instead, in one line."""
    with pytest.raises(ConfigError) as info:
        if source == "yaml":
            load_config(write(tmp_path, "model:\n  attention:\n    score: self\n"))
        else:
            load_config(None, ["model.attention.score=self"])
    message = str(info.value)
    assert "model.attention.score" in message and "model.arch: transformer" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.layers=two", "model.layers"),
        ("model.dropout=1.5", "model.dropout"),
        ("train.batch_tokens=[1]", "train.batch_tokens"),
    ],
)
def test_wrong_types_are_rejected(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(None, [override])


def test_cross_field_checks_see_all_overrides() -> None:
    config = load_config(None, ["model.hidden_dim=7", "model.bidirectional=false"])
    assert config.model.hidden_dim == 7
    with pytest.raises(ConfigError, match="even"):
        load_config(None, ["model.hidden_dim=7"])
    with pytest.raises(ConfigError, match="never sees the source"):
        load_config(None, ["model.decoder=none", "model.bridge=zero"])


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "not found"),
        ("dir", "directory"),
        ("model: [1, 2\n", "invalid YAML"),
        ("- 1\n", "mapping"),
    ],
)
def test_bad_files(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "c.yaml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_parse_override() -> None:
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("run_dir=runs/x") == {"run_dir": "runs/x"}
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_saved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["model.rnn=lstm", "decode.beam=3"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_every_field_is_documented() -> None:
    rows = field_docs()
    missing = [key for key, _, doc in rows if not doc]
    assert not missing, f"undocumented config keys: {missing}"
    keys = {key for key, _, _ in rows}
    for public in (
        "model.attention.score",
        "model.attention.window",
        "data.train.src",
        "decode.beam",
    ):
        assert public in keys
