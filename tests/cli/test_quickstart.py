"""attnmt quickstart --set: any config key over the quickstart preset, validated like
attnmt train --set, and never a model trained with other settings reported as the one asked
for."""

from __future__ import annotations

import subprocess
import sys
from operator import attrgetter
from pathlib import Path

import pytest

from attnmt.cli.quickstart import _check_same_settings, describe, quickstart_config
from attnmt.config import RNN_KEYS, ModelConfig, save_config
from attnmt.errors import UserError


def run_quickstart(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attnmt.cli", "quickstart", "--no-progress", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_set_changes_only_the_keys_named(tmp_path: Path) -> None:
    plain = quickstart_config(tmp_path, 2.5)
    changed = quickstart_config(
        tmp_path, 2.5, ["model.attention.score=dot", "model.decoder=luong", "train.lr=0.001"]
    )
    assert (changed.model.attention.score, changed.model.decoder) == ("dot", "luong")
    assert changed.train.lr == pytest.approx(1e-3)
    assert changed.model_dump(
        exclude={"model": {"attention": {"score"}, "decoder": True}, "train": {"lr"}}
    ) == plain.model_dump(
        exclude={"model": {"attention": {"score"}, "decoder": True}, "train": {"lr"}}
    )
    assert describe(changed.model) == "Luong attention (dot)"


def test_switching_to_the_transformer_drops_the_preset_rnn_keys(tmp_path: Path) -> None:
    plain = quickstart_config(tmp_path, 2.5)
    config = quickstart_config(tmp_path, 2.5, ["model.arch=transformer"])
    assert config.model.arch == "transformer"
    assert config.model.embed_dim == plain.model.embed_dim  # a key both families read
    defaults = ModelConfig()
    for key in RNN_KEYS:  # the preset's RNN keys are back at their defaults
        assert attrgetter(key)(config.model) == attrgetter(key)(defaults), key
    assert describe(config.model) == "Transformer"


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("model.bogus=1", "unknown key 'model.bogus'"),
        ("model.hidden_dim=abc", "model.hidden_dim"),
        ("model.attention.score=self", "model.arch: transformer"),
        ("run_dir=elsewhere", "--run-dir DIR"),
    ],
)
def test_bad_set_is_one_line_before_anything_is_written(
    tmp_path: Path, override: str, fragment: str
) -> None:
    with pytest.raises(UserError):
        quickstart_config(tmp_path, 2.5, [override])
    result = run_quickstart("--run-dir", "run", "--set", override, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_trained_with_other_settings_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"")  # refused before it is read
    save_config(quickstart_config(Path("run"), 2.5), run_dir / "config.yaml")
    result = run_quickstart("--run-dir", "run", "--set", "model.attention.score=dot", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "model.attention.score" in lines[0] and "--run-dir" in lines[0]


def test_only_the_time_budget_may_differ(tmp_path: Path) -> None:
    save_config(quickstart_config(tmp_path, 2.5), tmp_path / "config.yaml")
    _check_same_settings(tmp_path, quickstart_config(tmp_path, 10))  # a longer budget: reused
    with pytest.raises(UserError, match="model.embed_dim"):
        _check_same_settings(tmp_path, quickstart_config(tmp_path, 2.5, ["model.embed_dim=32"]))
