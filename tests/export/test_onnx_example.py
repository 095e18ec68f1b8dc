"""examples/onnx_translate.py: with torch and attnmt made unimportable it decodes an
export into attnmt's greedy output, and it reads every tokenizer attnmt writes as
attnmt does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from data.test_tokenize import ENGLISH, GERMAN, KINDS, kind_id, make_config
from helpers import SENTENCES, make_run

from attnmt.data.tokenize import load_tokenizers, train_tokenizers
from attnmt.export.onnx import export_onnx
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from attnmt.translate.translator import Translator

pytest.importorskip("onnxruntime")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx_translate.py"
SPECIAL = {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onnx_translate", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blocked(directory: Path) -> Path:
    """A directory that, first on PYTHONPATH, makes `import torch` and `import attnmt`
    fail as if they were not installed."""
    for name in ("torch", "attnmt"):
        package = directory / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} is blocked')\n")
    return directory


def test_the_example_decodes_attnmts_greedy_output_without_torch(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    onnx_dir = export_onnx(run_dir, tmp_path / "onnx")
    lines = [*SENTENCES, "", "an unknown word", SENTENCES[0]]
    expected = [t.text for t in Translator.load(run_dir, device="cpu").translate(lines, beam=1)]
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(onnx_dir), "--batch-size", "5"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(blocked(tmp_path / "blocked")), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    probe = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env={"PYTHONPATH": str(tmp_path / "blocked")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "torch is blocked" in probe.stderr  # the block works


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
@pytest.mark.parametrize("joint", [True, False], ids=["joint", "separate"])
def test_the_example_tokenizes_as_attnmt(tmp_path: Path, kind: dict[str, str], joint: bool) -> None:
    config = make_config(tmp_path, joint_vocab=joint, **kind)
    src_tok, tgt_tok = train_tokenizers(config, tmp_path / "tokenizer")
    theirs = example().load_tokenizers(tmp_path / "tokenizer", SPECIAL)
    assert load_tokenizers(tmp_path / "tokenizer")[0].kind == kind["tokenizer"]
    texts = [*GERMAN, *ENGLISH, "Ein Zebra über 42 Brücken! ✓", "  spaces   between  "]
    for ours, other in zip((src_tok, tgt_tok), theirs, strict=True):
        for text in texts:
            ids = ours.encode(text)
            assert other.encode(text) == ids
            with_control = [BOS_ID, *ids, EOS_ID, PAD_ID]
            assert other.decode(with_control) == ours.decode(with_control)
