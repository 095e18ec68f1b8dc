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
from attnmt.device import loading_precision, resolve_device
from attnmt.errors import UserError
from attnmt.io.checkpoint import find_model_checkpoint, load_checkpoint, model_from_checkpoint
from attnmt.models.interface import Seq2SeqModel
from attnmt.runtime.onnx import TOKENIZER_DIR, Manifest, OnnxModel, is_onnx_export


@dataclass
class Run:
    """A trained model with its tokenizers, ready to decode."""

    run_dir: Path
    model: Seq2SeqModel  # a PyTorch model (TrainableModel), or an export's OnnxModel
    config: Config
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype for inference (None: fp32)

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        which: str = "best",
        device: str = "auto",
        precision: str = "auto",
    ) -> Run:
        """Load `run_dir`'s `which` checkpoint (best, last, averaged, int8 or a path) onto
        `device`, with the tokenizers it was trained with, in the precision
        :func:`attnmt.device.loading_precision` chooses: `auto` goes by what training
        recorded, `fp32` and `bf16` are taken as asked. An int8 checkpoint (``attnmt
        export --int8``) runs on the CPU, in fp32 activations; `auto` picks the CPU.
        An ONNX export directory (``attnmt export --onnx``) loads through
        :meth:`of_export`."""
        if is_onnx_export(run_dir):
            return cls.of_export(Path(run_dir), which, device, precision)
        checkpoint = load_checkpoint(find_model_checkpoint(Path(run_dir), which))
        header = checkpoint.header
        int8 = header.quantization is not None
        resolved = resolve_device("cpu" if int8 and device == "auto" else device)
        dtype = loading_precision(
            precision, resolved, header.config.train.precision, header.precision, int8
        )
        model = model_from_checkpoint(checkpoint, resolved)
        tokenizer_dir = Path(run_dir) / "tokenizer"
        src_tok, tgt_tok = load_tokenizers(tokenizer_dir)
        header.check_tokenizers(src_tok, tgt_tok, tokenizer_dir)
        return cls(Path(run_dir), model, header.config, src_tok, tgt_tok, resolved, dtype)

    @classmethod
    def of_export(
        cls, directory: Path, which: str = "best", device: str = "auto", precision: str = "auto"
    ) -> Run:
        """An ONNX export (``attnmt export --onnx``): its graphs on onnxruntime, on the CPU
        in fp32, with the config and tokenizers the export holds."""
        for flag, value, allowed in (
            ("--which", which, ("best",)),
            ("--device", device, ("auto", "cpu")),
            ("--precision", precision, ("auto", "fp32")),
        ):
            if value not in allowed:
                raise UserError(
                    f"{directory} is an ONNX export, one fp32 model that onnxruntime runs "
                    f"on the CPU: {flag} {value} does not apply to it"
                )
        manifest = Manifest.read(directory)
        try:
            config = Config.model_validate(manifest.config)
        except ValueError:
            raise UserError(f"{directory}: its config cannot be read by this attnmt") from None
        src_tok, tgt_tok = load_tokenizers(directory / TOKENIZER_DIR)
        if tgt_tok.vocab_size != manifest.tgt_vocab_size:
            raise UserError(
                f"{directory / TOKENIZER_DIR}: the target tokenizer has {tgt_tok.vocab_size} "
                f"pieces, the model {manifest.tgt_vocab_size} (was the directory replaced?)"
            )
        model = OnnxModel(manifest)
        return cls(directory, model, config, src_tok, tgt_tok, torch.device("cpu"), None)
