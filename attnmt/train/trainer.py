"""Training: batches by token budget, validation with BLEU/chrF, checkpoints that resume.

The loss is the label-smoothed cross-entropy per target token. Every
`train.validate_every` steps the trainer measures dev loss and perplexity, decodes the
dev set (greedy unless `train.dev_beam` > 1) for BLEU and chrF, keeps the best model by
`train.metric`, writes a resumable checkpoint and stops early after `train.patience`
validations without improvement.

A resumed run restores model, optimizer, schedule, random state and the position in the
data, so it ends with the same weights as a run that was never interrupted.

Under torchrun (see :mod:`attnmt.train.distributed`) every process runs this loop on its
own shard of each epoch, DDP averages the gradients, and the loss of a step is normalised
by the target tokens of all ranks together, so a step with N processes computes the
gradient one process would over the union of their batches. Rank 0 validates, logs and
writes checkpoints; the others wait for it at a collective and take its results (dev
scores, clock), so every rank makes the same schedule, early-stopping and time-budget
decisions and stops at the same step.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnmt.config import Config, decode_options
from attnmt.data.batching import Batch, BatchSampler, make_batch
from attnmt.device import autocast, resolve_device, training_precision
from attnmt.errors import UserError
from attnmt.evaluate.evaluation import evaluate_corpus
from attnmt.io.checkpoint import Checkpoint, CheckpointHeader, TrainingState
from attnmt.models.build import build_model
from attnmt.models.seq2seq import count_parameters
from attnmt.train import distributed, precision
from attnmt.train.callbacks import Callback, Log, console, default_callbacks, quiet
from attnmt.train.distributed import World
from attnmt.train.forward import TrainingForward
from attnmt.train.progress import HIGHER_IS_BETTER, Progress, TrainSummary
from attnmt.train.schedule import LRSchedule
from attnmt.train.setup import TrainingData, prepare_data, prepare_run_dir
from attnmt.translate.translator import Translator


class Trainer:
    """The training loop of one run; `run()` trains until a stop condition.

    Build one with :meth:`setup` (process group, run directory, tokenizers, corpora,
    callbacks), or directly from prepared :class:`TrainingData` and a list of callbacks.
    `world` says which of the torchrun processes this is (one process by default).
    """

    def __init__(
        self,
        config: Config,
        data: TrainingData,
        checkpoint: Checkpoint | None = None,
        callbacks: list[Callback] | None = None,
        log: Log = console,
        world: World | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.data = data
        self.callbacks = callbacks if callbacks is not None else []
        self.world = world if world is not None else World()
        self.log = log if self.world.is_main else quiet
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        self.device = distributed.device_for(self.world, resolve_device(train.device))
        torch.manual_seed(train.seed)  # the same initial weights on every rank
        self.model = build_model(config.model, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
        self.model.to(self.device)
        if self.world.rank:  # its own dropout; rank 0 keeps the single-process stream
            torch.manual_seed(distributed.rank_seed(train.seed, self.world.rank))
        forward: nn.Module = distributed.wrap_ddp(
            TrainingForward(self.model, train.teacher_forcing, train.label_smoothing), self.device
        )
        self.forward: Any = torch.compile(forward, dynamic=True) if train.compile else forward
        self.rank_rng: list[dict[str, Tensor]] | None = None  # each rank's, at the last save
        optimizer_class = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_class(
            self.model.parameters(), lr=train.lr, weight_decay=train.weight_decay
        )
        self.schedule = LRSchedule(
            self.optimizer,
            train.schedule,
            train.lr,
            train.warmup_steps,
            train.max_steps,
            max_seconds=self.budget_seconds(),
        )
        self.sampler = BatchSampler(
            data.train.src_lengths,
            data.train.tgt_lengths,
            train.batch_tokens,
            shuffle=True,
            seed=train.seed,
            rank=self.world.rank,
            world_size=self.world.size,
        )
        self.dtype = training_precision(  # a resumed run keeps what it recorded
            train.precision,
            self.device,
            self.world.size,
            checkpoint.header.precision if checkpoint is not None else None,
            lambda: precision.bf16_speedup_on_own_batches(
                list(self.model.parameters()), self.forward, data.train, self.sampler.shard(0)
            ),
            self.log,
        )
        self.progress = Progress()
        if checkpoint is not None:
            self._restore(checkpoint)

    @classmethod
    def setup(
        cls,
        config: Config,
        resume: bool = False,
        progress_bar: bool | None = None,
        log: Log = console,
    ) -> Trainer:
        """Join the torchrun process group (if any), prepare the run directory, tokenizers
        and corpora, then build the trainer with the default callbacks (progress bar,
        metrics log, TensorBoard, checkpoints; on rank 0 only)."""
        device = resolve_device(config.train.device)
        world = distributed.init_distributed(device)
        device = distributed.device_for(world, device)
        log = log if world.is_main else quiet
        if world.distributed:
            log(f"data-parallel training on {world.size} processes ({device.type})")
        checkpoint = prepare_run_dir(config, resume, log, device, world.rank)
        data = prepare_data(config, log, world)
        resumed = checkpoint.header.step if checkpoint is not None else None
        callbacks = default_callbacks(Path(config.run_dir), world.rank, progress_bar, resumed)
        return cls(config, data, checkpoint, callbacks, log, world)

    # -- state ------------------------------------------------------------------------

    def budget_seconds(self) -> float | None:
        minutes = self.config.train.max_minutes
        return minutes * 60 if minutes else None

    def seconds_left(self) -> float | None:
        """Time left in the train.max_minutes budget (None without a budget)."""
        budget = self.budget_seconds()
        return None if budget is None else max(budget - self.progress.elapsed, 0.0)

    def checkpoint(self, sampler_state: dict[str, int] | None = None) -> Checkpoint:
        """The model with its header (config, tokenizers, precision, step, the last dev
        scores); with `sampler_state`, a step checkpoint: also everything the loop needs
        to continue."""
        data, progress = self.data, self.progress
        header = CheckpointHeader.of_run(
            self.config, data.src_tok, data.tgt_tok, self.dtype, progress.step, progress.last_dev
        )
        if sampler_state is None:
            return Checkpoint(header, self.model.state_dict())
        training = TrainingState(
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            sampler=sampler_state,
            progress=asdict(progress),
            rng={
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "ranks": self.rank_rng if self.world.distributed and self.rank_rng else [],
            },
        )
        return Checkpoint(header, self.model.state_dict(), training)

    def _restore(self, checkpoint: Checkpoint) -> None:
        """Continue from `checkpoint`, written by any number of processes: the weights
        are the unwrapped model's, and the sampler maps its position to this world."""
        training = checkpoint.training
        if training is None:
            raise UserError("cannot resume from a checkpoint without training state")
        self.model.load_state_dict(checkpoint.model)
        self.optimizer.load_state_dict(training.optimizer)
        self.schedule.load_state_dict(training.schedule)
        self.sampler.load_state_dict(training.sampler)
        self.progress = Progress(**training.progress)
        distributed.restore_rng(
            training.rng, self.world, self.config.train.seed, self.progress.step
        )

    # -- the loop ---------------------------------------------------------------------

    def run(self, until_step: int | None = None) -> TrainSummary:
        """Train until max_steps, max_minutes, early stopping, or `until_step` (which stops
        as an interruption would: a checkpoint, no validation)."""
        train = self.config.train
        reason = "max_steps"
        window_tokens, window_start = 0, time.perf_counter()
        last = time.perf_counter()
        sampler_state = self.sampler.state_dict()
        try:
            while self.progress.step < train.max_steps:
                for indices in self.sampler:
                    started = time.perf_counter()
                    loss, tokens = self._train_step(make_batch(self.data.train, indices))
                    sampler_state = self.sampler.state_dict()
                    now = time.perf_counter()
                    self.progress.train_time += now - started
                    self.progress.elapsed += now - last
                    # Every rank runs on rank 0's clock: the same schedule and time budget.
                    self.progress.elapsed = distributed.broadcast_value(self.progress.elapsed)
                    last = now
                    self.progress.step += 1
                    self.progress.tgt_tokens += tokens
                    window_tokens += tokens
                    step = self.progress.step
                    self._emit("on_step")
                    if step % train.log_every == 0:
                        rate = window_tokens / max(now - window_start, 1e-9)
                        lr = self.optimizer.param_groups[0]["lr"]
                        self._record(
                            {"split": "train", "loss": loss, "lr": lr, "tgt_tokens_per_s": rate}
                        )
                        window_tokens, window_start = 0, time.perf_counter()
                    if step % train.validate_every == 0 and self._validate_and_save():
                        reason = "early stopping"
                        break
                    if until_step is not None and step >= until_step:
                        self._save(self.sampler.state_dict(), False)
                        return self._summary("interrupted")
                    if self.seconds_left() == 0:
                        reason = "max_minutes"
                        break
                    if step >= train.max_steps:
                        break
                if reason != "max_steps":
                    break
        except KeyboardInterrupt:
            self.rank_rng = None  # no collectives now: the other ranks may be gone
            self._emit("on_save", sampler_state, False)
            self.log(
                f"interrupted at step {self.progress.step}; checkpoint saved, "
                "continue with --resume"
            )
            raise
        finally:
            self._emit("on_end")
        if self.progress.step % train.validate_every != 0:
            self._validate_and_save()
        no_best = not (self.run_dir / "checkpoints" / "best.pt").exists()
        if distributed.broadcast_object(no_best):  # rank 0 looked; all ranks must agree
            self._save(self.sampler.state_dict(), True)
        return self._summary(reason)

    def _train_step(self, batch: Batch) -> tuple[float, int]:
        """One optimizer step; returns the mean loss per target token and the token count
        (both over all ranks)."""
        train = self.config.train
        loss_sum, tokens = self.compute_gradients(batch)
        if train.clip_norm > 0:  # the gradients are already the same on every rank
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_norm)
        self.optimizer.step()
        return loss_sum / tokens, tokens

    def compute_gradients(self, batch: Batch) -> tuple[float, int]:
        """Forward and backward for one batch per rank: afterwards every parameter's
        ``.grad`` is the gradient of the mean loss per target token over the union of
        the ranks' batches. Returns that union's loss sum and target token count.

        DDP averages the ranks' gradients: (1/N) sum_r grad L_r. Scaling rank r's loss
        sum L_r by N / n_tokens (all ranks' tokens, one all-reduce) turns that average
        into grad (sum_r L_r) / n_tokens, exactly what one process computes over the
        union batch, however the tokens are spread over the ranks.
        """
        self.forward.train()
        self.schedule.apply(self.progress.step + 1, self.progress.elapsed)
        batch = self._to_device(batch)
        with autocast(self.device, self.dtype):
            loss_sum = self.forward(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
        total_loss, total_tokens = distributed.all_reduce_sum(
            [loss_sum.item(), float(batch.n_tgt_tokens)]
        )
        self.optimizer.zero_grad(set_to_none=True)
        (loss_sum * (self.world.size / total_tokens)).backward()
        return total_loss, int(total_tokens)

    def _to_device(self, batch: Batch) -> Batch:
        """The batch on the training device. For CUDA it goes through pinned (page-locked)
        memory, so the copy is asynchronous and overlaps the GPU's work."""
        if self.device.type == "cuda":
            pinned = {name: getattr(batch, name).pin_memory() for name in ("src", "tgt_in")}
            batch = replace(
                batch,
                src_lengths=batch.src_lengths.pin_memory(),
                tgt_out=batch.tgt_out.pin_memory(),
                **pinned,
            )
        return batch.to(self.device)

    # -- validation -------------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Dev loss, perplexity, BLEU, chrF and exact match, through the one evaluation
        path (:func:`attnmt.evaluate.evaluation.evaluate_corpus`)."""
        assert self.data.dev is not None
        train = self.config.train
        translator = Translator(
            self.model, self.data.src_tok, self.data.tgt_tok, self.config, self.device, self.dtype
        )
        options = decode_options(
            self.config.decode, {"beam": train.dev_beam, "n_best": 1, "sample": False}
        )
        evaluation = evaluate_corpus(
            translator,
            self.data.dev,
            self.data.dev_refs,
            options=options,
            limit=train.dev_max_sentences,
        )
        scores = evaluation.scores
        keys = ("loss", "ppl", "bleu", "chrf", "exact")
        return {key: scores[key] for key in keys}

    def _validate_and_save(self) -> bool:
        """Validate (when there is a dev set), checkpoint, and say whether to stop early.

        Rank 0 decodes the dev set and sends its scores to the other ranks, which wait for
        them; every rank then keeps the same books (best score, patience, the plateau
        schedule), so all of them stop together."""
        train = self.config.train
        improved = True
        if self.data.dev is not None:
            metrics = self.validate() if self.world.is_main else None
            metrics = distributed.broadcast_object(metrics)
            self._record({"split": "dev", **metrics})
            improved = self.progress.note_validation(metrics, train.metric)
            self.schedule.validated(metrics[train.metric], HIGHER_IS_BETTER[train.metric])
            self.log(
                f"step {self.progress.step}: dev loss {metrics['loss']:.3f} "
                f"ppl {metrics['ppl']:.2f} BLEU {metrics['bleu']:.2f} "
                f"chrF {metrics['chrf']:.2f} exact {metrics['exact']:.1%}"
                + (" (best)" if improved else "")
            )
        if train.patience and self.progress.bad_validations >= train.patience:
            self.progress.stopped_early = True
        self._save(self.sampler.state_dict(), improved)
        return self.progress.stopped_early

    def _save(self, sampler_state: dict[str, int], best: bool) -> None:
        """Checkpoint on rank 0 (its callbacks) with every rank's random state; the other
        ranks wait at a barrier until the files are written."""
        state: dict[str, Tensor] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        self.rank_rng = distributed.gather_objects(state)
        self._emit("on_save", sampler_state, best)
        distributed.barrier()

    # -- callbacks ----------------------------------------------------------------------

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _record(self, entry: dict[str, Any]) -> None:
        """Log `entry` with the loop's progress so far: step, wall time, and the time and
        target tokens of the training steps alone (what ``attnmt compare`` reports)."""
        progress = self.progress
        entry = {
            "step": progress.step,
            "time": round(progress.elapsed, 3),
            "train_time": round(progress.train_time, 3),
            "tgt_tokens": progress.tgt_tokens,
            **entry,
        }
        self._emit("on_log", entry)

    def _summary(self, reason: str) -> TrainSummary:
        progress = self.progress
        return TrainSummary(
            run_dir=self.run_dir,
            steps=progress.step,
            elapsed=progress.elapsed,
            tgt_tokens_per_s=progress.tgt_tokens / max(progress.train_time, 1e-9),
            best_step=progress.best_step,
            best_dev=progress.last_dev,
            parameters=count_parameters(self.model),
            stop_reason=reason,
            rank=self.world.rank,
        )


def train(config: Config, resume: bool = False, progress_bar: bool | None = None) -> TrainSummary:
    """Train the run `config` describes; the Python entry point behind `attnmt train`
    (one process, or one of the processes torchrun starts)."""
    try:
        summary = Trainer.setup(config, resume=resume, progress_bar=progress_bar).run()
    except BaseException:
        distributed.shutdown()  # no barrier: the other ranks may never get there
        raise
    # Every rank finishes its last collective before any rank tears the group down: a
    # rank that left early made gloo abort another at exit ("terminate called without
    # an active exception", once in about four test-suite runs with torch 2.13).
    distributed.barrier()
    distributed.shutdown()
    return summary
