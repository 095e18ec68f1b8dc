"""Helpers shared by the tests: a ready-made run directory without training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attnmt.config import build_config
from attnmt.data.chitchat import SEPARATOR
from attnmt.data.synthetic import generate
from attnmt.data.tokenize import WordTokenizer, save_tokenizers
from attnmt.io.checkpoint import Checkpoint, CheckpointHeader, save_checkpoint
from attnmt.models.build import build_model
from attnmt.special import EOS_ID

SENTENCES = [pair.source for pair in generate(12, seed=5)]


def make_run(
    directory: Path,
    seed: int = 0,
    decoder: str = "bahdanau",
    vocab_size: int = 100,
    task: str = "translation",
    context_turns: int = 0,
    turned: bool = False,
    model: dict[str, Any] | None = None,
) -> Path:
    """A run directory holding a tiny random model with word tokenizers: what
    ``attnmt train`` leaves behind, without training. Large random weights make outputs
    depend on the source and differ in length (as in test_search). `task` is its
    data.task (a dialogue or backward dialogue run reads its pairs like a translation), and
    `context_turns` the turns a dialogue run reads before the message (with any, its
    source vocabulary holds the separator "|||" between them). `turned` turns the pairs
    round: a backward run that reads what the other runs output. `model` adds keys to
    its model section (arch, rnn, attention, ...); None removes one (a Transformer has
    no decoder or hidden_dim)."""
    pairs = generate(200, seed=1)
    sources, targets = [p.source for p in pairs], [p.target for p in pairs]
    if turned:
        sources, targets = targets, sources
    separator = [SEPARATOR.strip()] if context_turns else []
    src_tok = WordTokenizer.build([*sources, *separator], vocab_size)
    tgt_tok = WordTokenizer.build(targets, vocab_size)
    save_tokenizers(src_tok, tgt_tok, directory / "tokenizer")
    overrides: dict[str, Any] = {
        "run_dir": str(directory),
        "model": {
            key: value
            for key, value in {
                "embed_dim": 8,
                "hidden_dim": 16,
                "dropout": 0.0,
                "decoder": decoder,
                **(model or {}),
            }.items()
            if value is not None
        },
        "data": {
            "tokenizer": "word",
            "vocab_size": vocab_size,
            "task": task,
            "context_turns": context_turns,
        },
        "train": {"precision": "fp32"},
        "decode": {"beam": 1, "max_len": 25},
    }
    config = build_config([("test", overrides)])
    torch.manual_seed(seed)
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 1.0)
        model.generator.bias[EOS_ID] += 2.0
    header = CheckpointHeader.of_run(config, src_tok, tgt_tok, None, step=None)
    save_checkpoint(directory / "checkpoints" / "best.pt", Checkpoint(header, model.state_dict()))
    return directory
