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
from attnmt.io.checkpoint import find_model_checkpoint, load_checkpoint, model_from_payload
from attnmt.models.seq2seq import Seq2Seq


@dataclass
class Run:
    """A trained model with its tokenizers, ready to decode."""

    run_dir: Path
    model: Seq2Seq
    config: Config
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype for inference (None: fp32)

    @classmethod
    def load(cls, run_dir: str | Path, which: str = "best", device: str = "auto") -> Run:
        """Load `run_dir`'s `which` checkpoint (best, last or a path) onto `device`."""
        resolved = resolve_device(device)
        payload = load_checkpoint(find_model_checkpoint(Path(run_dir), which))
        model, config = model_from_payload(payload, resolved)
        src_tok, tgt_tok = load_tokenizers(Path(run_dir) / "tokenizer")
        # what training measured on the run's own batches beats a micro-benchmark
        dtype = resolve_precision(config.train.precision, resolved, payload.get("precision"))
        return cls(Path(run_dir), model, config, src_tok, tgt_tok, resolved, dtype)
