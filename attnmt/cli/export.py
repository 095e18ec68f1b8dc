"""Export a trained run for deployment: an int8 checkpoint or ONNX graphs.

    attnmt export runs/multi30k_de_en_luong_concat --int8
    attnmt translate --model runs/multi30k_de_en_luong_concat --which int8

    attnmt export runs/multi30k_de_en_transformer --onnx exports/transformer
    attnmt translate --model exports/transformer < in.de > out.en

``--int8`` writes ``RUN/checkpoints/int8.pt``, a dynamically quantised copy beside
``best.pt`` and never over it, chosen later with ``--which int8``. ``--onnx DIR`` writes
``encoder.onnx`` and ``decoder_step.onnx`` (dynamic batch and length axes), the
tokenizers and ``manifest.json`` into DIR; ``--model DIR`` then runs the export through
translate, evaluate, serve and chat on onnxruntime (the ``attnmt[onnx]`` extra), and
``examples/onnx_translate.py`` decodes it without torch. See docs/deploying.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnmt.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run", metavar="RUN_DIR", help="trained run directory")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--int8", action="store_true", help="write RUN_DIR/checkpoints/int8.pt (dynamic int8)"
    )
    target.add_argument(
        "--onnx", metavar="DIR", help="write encoder.onnx, decoder_step.onnx, tokenizer/ to DIR"
    )
    parser.add_argument(
        "--which",
        default="best",
        metavar="best|last|averaged|PATH",
        help="the checkpoint to export (default: best)",
    )


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if args.int8:
        return _int8(run_dir, args.which)
    return _onnx(run_dir, Path(args.onnx), args.which)


def _int8(run_dir: Path, which: str) -> int:
    try:
        from attnmt.export.int8 import export_int8
    except ModuleNotFoundError as err:
        if err.name != "attnmt.export.int8":
            raise
        raise UserError("--int8 is not available in this version of attnmt") from err
    path = export_int8(run_dir, which)
    print(f"wrote {path}")
    print(f"use it with: attnmt translate --model {run_dir} --which int8")
    return 0


def _onnx(run_dir: Path, out_dir: Path, which: str) -> int:
    try:
        from attnmt.export.onnx import export_onnx
    except ModuleNotFoundError as err:
        if err.name != "attnmt.export.onnx":
            raise
        raise UserError("--onnx is not available in this version of attnmt") from err
    export_onnx(run_dir, out_dir, which)
    print(f"wrote {out_dir}: encoder.onnx, decoder_step.onnx, tokenizer/, manifest.json")
    print(f"use it with: attnmt translate --model {out_dir}")
    return 0
