"""A trained run, loaded: its model, config, tokenizers and where it runs.

    run = Run.load("runs/quickstart")          # the best checkpoint, device "auto"
    run.model, run.config, run.src_tok, run.tgt_tok, run.device, run.dtype

Every command and API that uses a trained model (translate, evaluate, compare, plot,
serve, chat) loads it through :meth:`Run.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attnmt.config import Config
from attnmt.data.tokenize import Tokenizer, load_tokenizers
from attnmt.device import resolve_device, resolve_precision
from attnmt.io.checkpoint import find_model_checkpoint, load_checkpoint, model_from_checkpoint
from attnmt.models.interface import TrainableModel


@dataclass
class Run:
    """A trained model with its tokenizers, ready to decode."""

    run_dir: Path
    model: TrainableModel
    config: Config
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype for inference (None: fp32)

    @classmethod
    def load(cls, run_dir: str | Path, which: str = "best", device: str = "auto") -> Run:
        """Load `run_dir`'s `which` checkpoint (best, last, averaged or a path) onto
        `device`, with the tokenizers it was trained with, in the precision
        :func:`attnmt.device.resolve_precision` chooses from what training recorded."""
        resolved = resolve_device(device)
        checkpoint = load_checkpoint(find_model_checkpoint(Path(run_dir), which))
        header = checkpoint.header
        model = model_from_checkpoint(checkpoint, resolved)
        tokenizer_dir = Path(run_dir) / "tokenizer"
        src_tok, tgt_tok = load_tokenizers(tokenizer_dir)
        header.check_tokenizers(src_tok, tgt_tok, tokenizer_dir)
        dtype = resolve_precision(header.config.train.precision, resolved, header.precision)
        return cls(Path(run_dir), model, header.config, src_tok, tgt_tok, resolved, dtype)
