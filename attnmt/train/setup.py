"""Everything a training run needs before its loop starts: the run directory, the
tokenizers and the tokenized corpora. :meth:`Trainer.setup` calls these first, so the
:class:`attnmt.train.trainer.Trainer` itself only trains.

Under torchrun every process reads the same files; only rank 0 writes to the run
directory (its config, tokenizers and tokenized corpora), and the others wait for it at a
barrier, then load what it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attnmt.config import Config, save_config
from attnmt.data.corpus import TokenizedCorpus, load_corpus
from attnmt.data.text import read_parallel
from attnmt.data.tokenize import Tokenizer, load_tokenizers, train_tokenizers
from attnmt.errors import UserError
from attnmt.io.checkpoint import Checkpoint, load_checkpoint, step_checkpoints
from attnmt.train.callbacks import Log
from attnmt.train.distributed import World, barrier


@dataclass
class TrainingData:
    """Tokenizers and tokenized corpora of a run."""

    src_tok: Tokenizer
    tgt_tok: Tokenizer
    train: TokenizedCorpus
    dev: TokenizedCorpus | None
    dev_refs: list[str]


def prepare_run_dir(
    config: Config, resume: bool, log: Log, device: torch.device, rank: int = 0
) -> Checkpoint | None:
    """Create the run directory, or find the checkpoint to resume; never overwrite a run.

    Returns the checkpoint to resume from (None for a new run)."""
    run_dir = Path(config.run_dir)
    existing = step_checkpoints(run_dir)
    if resume:
        if not existing:
            raise UserError(f"--resume: {run_dir} has no checkpoint to resume from")
        checkpoint = load_checkpoint(existing[-1], device)
        saved = checkpoint.header.config
        for section in ("model", "data"):
            if getattr(saved, section) != getattr(config, section):
                raise UserError(
                    f"--resume: the {section} section differs from the run in {run_dir}; "
                    "resume with the same config (train.* keys may change)"
                )
        log(f"resuming {run_dir} from step {checkpoint.header.step}")
        return checkpoint
    if existing or (run_dir / "checkpoints" / "best.pt").exists():
        raise UserError(
            f"{run_dir} already holds a trained run; pass --resume to continue it "
            "or set run_dir to a new directory"
        )
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    return None


def prepare_tokenizers(config: Config, log: Log) -> tuple[Tokenizer, Tokenizer]:
    """The run's tokenizers: loaded if the run has them, else learned from data.train."""
    directory = Path(config.run_dir) / "tokenizer"
    if directory.is_dir() and any(directory.iterdir()):
        return load_tokenizers(directory)
    log(f"training {config.data.tokenizer} tokenizers on data.train")
    return train_tokenizers(config.data, directory)


def prepare_data(config: Config, log: Log, world: World | None = None) -> TrainingData:
    """Tokenizers, and the train and dev corpora tokenized (and cached) with them.

    With several processes rank 0 learns the tokenizers and tokenizes the corpora while
    the others wait at a barrier; then they find everything in the run directory and
    only load it (the corpora as memory maps, whose pages the processes share).
    """
    world = world if world is not None else World()
    if not world.is_main:
        barrier()  # until rank 0 has written the tokenizers and corpora
        return _prepare_data(config, log)
    data = _prepare_data(config, log)
    barrier()
    return data


def _prepare_data(config: Config, log: Log) -> TrainingData:
    src_tok, tgt_tok = prepare_tokenizers(config, log)
    cache = Path(config.run_dir) / "cache"
    workers = config.train.data_workers
    train = load_corpus(
        config.data.train, "train", src_tok, tgt_tok, config.data, cache, workers=workers
    )
    if len(train) == 0:
        raise UserError("data.train: no usable sentence pairs after filtering")
    stats = train.stats
    log(
        f"train: {stats.pairs} pairs kept, {stats.dropped_empty} empty and "
        f"{stats.dropped_long} longer than data.max_len={config.data.max_len} dropped"
    )
    dev, dev_refs = None, []
    if config.data.dev.given:
        dev = load_corpus(config.data.dev, "dev", src_tok, tgt_tok, config.data, cache, False)
        dev_refs = [tgt for _, tgt in read_parallel(config.data.dev, "dev")]
    return TrainingData(src_tok, tgt_tok, train, dev, dev_refs)
