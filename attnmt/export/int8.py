"""``attnmt export --int8``: an int8 copy of a run's model, beside its checkpoints.

    export_int8("runs/multi30k_luong")            # -> runs/multi30k_luong/checkpoints/int8.pt
    attnmt translate --model runs/multi30k_luong --which int8

The copy is dynamically quantised (:mod:`attnmt.models.quantized` says what becomes int8
and what stays fp32, and why): int8 weights for linear, recurrent and embedding layers,
fp32 activations and attention. It is written atomically to ``checkpoints/int8.pt``,
never over ``best.pt`` or any other checkpoint, with the source checkpoint's header
(config, step, tokenizer fingerprints, dev scores) marked ``quantization:
int8-dynamic``.
"""

from __future__ import annotations

from pathlib import Path

from attnmt.errors import UserError
from attnmt.io.checkpoint import (
    INT8,
    find_model_checkpoint,
    int8_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def export_int8(run_dir: Path, which: str = "best") -> Path:
    """Quantise `run_dir`'s `which` checkpoint (best, last, averaged or a path) to int8
    and write it to ``run_dir/checkpoints/int8.pt`` atomically; returns that path."""
    run_dir = Path(run_dir)
    if which == "int8":
        raise UserError("--which int8: export int8 from best, last, averaged or a path")
    source = find_model_checkpoint(run_dir, which)
    target = run_dir / "checkpoints" / INT8
    checkpoint = int8_checkpoint(load_checkpoint(source))
    save_checkpoint(target, checkpoint)
    return target
