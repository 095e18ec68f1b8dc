"""Training: batches by token budget, validation with BLEU/chrF, checkpoints that resume.

The loss is the label-smoothed cross-entropy per target token. Every
`train.validate_every` steps the trainer measures dev loss and perplexity, decodes the
dev set (greedy unless `train.dev_beam` > 1) for BLEU and chrF, keeps the best model by
`train.metric`, writes a resumable checkpoint and stops early after `train.patience`
validations without improvement.

A resumed run restores model, optimizer, schedule, random state and the position in the
data, so it ends with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from attnmt.checkpoint import load_checkpoint, save_checkpoint, step_checkpoints
from attnmt.config import Config, save_config
from attnmt.data import Batch, BatchSampler, TokenizedCorpus, load_corpus, make_batch, read_parallel
from attnmt.device import autocast, resolve_device, resolve_precision
from attnmt.errors import UserError
from attnmt.evaluate import corpus_loss, corpus_metrics, detokenize, exact_match, translate_corpus
from attnmt.fileio import write_text_atomic
from attnmt.model import Seq2Seq, build_model, count_parameters
from attnmt.schedule import LRSchedule
from attnmt.special import PAD_ID
from attnmt.tokenize import Tokenizer, load_tokenizers, train_tokenizers

HIGHER_IS_BETTER = {"bleu": True, "chrf": True, "loss": False}


@dataclass
class Progress:
    """What a checkpoint must remember about the loop itself."""

    step: int = 0
    elapsed: float = 0.0  # wall time of the run, validation included, across resumes
    train_time: float = 0.0  # the part spent in training steps
    tgt_tokens: int = 0  # real target tokens trained on
    best_value: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    stopped_early: bool = False
    last_dev: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainSummary:
    run_dir: Path
    steps: int
    elapsed: float
    tgt_tokens_per_s: float
    best_step: int
    best_dev: dict[str, float]
    parameters: int
    stop_reason: str


def label_smoothed_loss(logits: Tensor, target: Tensor, smoothing: float) -> Tensor:
    """Sum over real target tokens of the label-smoothed cross-entropy (Szegedy et al. 2016)."""
    return F.cross_entropy(
        logits.float().flatten(0, 1),
        target.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=smoothing,
        reduction="sum",
    )


def scheduled_sampling_log_probs(model: Seq2Seq, batch: Batch, gold_ratio: float) -> Tensor:
    """Decode step by step, feeding the gold previous token with probability `gold_ratio`
    and the model's own argmax otherwise (Bengio et al. 2015). Returns (B, T, V)."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    tokens = batch.tgt_in[:, 0]
    outputs = []
    for t in range(batch.tgt_in.size(1)):
        log_probs, _, state = model.step(tokens, enc, state)
        outputs.append(log_probs)
        if t + 1 < batch.tgt_in.size(1):
            use_gold = torch.rand(tokens.shape, device=tokens.device) < gold_ratio
            tokens = torch.where(use_gold, batch.tgt_in[:, t + 1], log_probs.argmax(-1))
    return torch.stack(outputs, dim=1)


class Trainer:
    """Owns one run directory; `run()` trains until a stop condition."""

    def __init__(
        self,
        config: Config,
        resume: bool = False,
        progress_bar: bool | None = None,
        log: Callable[[str], None] = tqdm.write,
    ) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.log = log
        self.progress_bar = progress_bar
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        self.device = resolve_device(train.device)
        self.dtype = resolve_precision(train.precision, self.device)
        checkpoint = self._prepare_run_dir(resume)
        torch.manual_seed(train.seed)

        self.src_tok, self.tgt_tok = self._tokenizers()
        cache = self.run_dir / "cache"
        self.train_data = load_corpus(
            config.data.train, "train", self.src_tok, self.tgt_tok, config.data, cache
        )
        if len(self.train_data) == 0:
            raise UserError("data.train: no usable sentence pairs after filtering")
        stats = self.train_data.stats
        self.log(
            f"train: {stats.pairs} pairs kept, {stats.dropped_empty} empty and "
            f"{stats.dropped_long} longer than data.max_len={config.data.max_len} dropped"
        )
        self.dev_data: TokenizedCorpus | None = None
        self.dev_refs: list[str] = []
        if config.data.dev.given:
            self.dev_data = load_corpus(
                config.data.dev, "dev", self.src_tok, self.tgt_tok, config.data, cache, False
            )
            self.dev_refs = [tgt for _, tgt in read_parallel(config.data.dev, "dev")]

        self.model = build_model(config.model, self.src_tok.vocab_size, self.tgt_tok.vocab_size)
        self.model.to(self.device)
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
            max_seconds=train.max_minutes * 60 if train.max_minutes else None,
        )
        self.sampler = BatchSampler(
            self.train_data.src_lengths,
            self.train_data.tgt_lengths,
            train.batch_tokens,
            shuffle=True,
            seed=train.seed,
        )
        self.progress = Progress()
        self.tensorboard = _tensorboard(self.run_dir)
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- set-up -----------------------------------------------------------------------

    def _prepare_run_dir(self, resume: bool) -> dict[str, Any] | None:
        """Create the run directory, or find the checkpoint to resume; never overwrite a run."""
        existing = step_checkpoints(self.run_dir)
        if resume:
            if not existing:
                raise UserError(f"--resume: {self.run_dir} has no checkpoint to resume from")
            checkpoint = load_checkpoint(existing[-1], self.device)
            saved = Config.model_validate(checkpoint["config"])
            for section in ("model", "data"):
                if getattr(saved, section) != getattr(self.config, section):
                    raise UserError(
                        f"--resume: the {section} section differs from the run in {self.run_dir}; "
                        "resume with the same config (train.* keys may change)"
                    )
            self.log(f"resuming {self.run_dir} from step {checkpoint['progress']['step']}")
            return checkpoint
        if existing or (self.run_dir / "checkpoints" / "best.pt").exists():
            raise UserError(
                f"{self.run_dir} already holds a trained run; pass --resume to continue it "
                "or set run_dir to a new directory"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        return None

    def _tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        directory = self.run_dir / "tokenizer"
        if directory.is_dir() and any(directory.iterdir()):
            return load_tokenizers(directory)
        self.log(f"training {self.config.data.tokenizer} tokenizers on data.train")
        return train_tokenizers(self.config.data, directory)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["schedule"])
        self.sampler.load_state_dict(checkpoint["sampler"])
        self.progress = Progress(**checkpoint["progress"])
        torch.set_rng_state(checkpoint["rng"]["torch"].cpu())
        if torch.cuda.is_available() and checkpoint["rng"].get("cuda"):
            torch.cuda.set_rng_state_all([s.cpu() for s in checkpoint["rng"]["cuda"]])
        _truncate_metrics(self.run_dir / "metrics.jsonl", self.progress.step)

    # -- the loop ---------------------------------------------------------------------

    def run(self, until_step: int | None = None) -> TrainSummary:
        """Train until max_steps, max_minutes, early stopping, or `until_step` (which stops
        as an interruption would: a checkpoint, no validation)."""
        train = self.config.train
        budget = train.max_minutes * 60 if train.max_minutes else float("inf")
        bar = tqdm(
            total=train.max_steps,
            initial=self.progress.step,
            disable=None if self.progress_bar is None else not self.progress_bar,
            unit="step",
            dynamic_ncols=True,
        )
        reason = "max_steps"
        window_tokens, window_start = 0, time.perf_counter()
        last = time.perf_counter()
        sampler_state = self.sampler.state_dict()
        try:
            while self.progress.step < train.max_steps:
                for indices in self.sampler:
                    started = time.perf_counter()
                    loss, tokens = self._train_step(make_batch(self.train_data, indices))
                    sampler_state = self.sampler.state_dict()
                    now = time.perf_counter()
                    self.progress.train_time += now - started
                    self.progress.elapsed += now - last
                    last = now
                    self.progress.step += 1
                    self.progress.tgt_tokens += tokens
                    window_tokens += tokens
                    step = self.progress.step
                    bar.update(1)
                    if step % train.log_every == 0:
                        rate = window_tokens / max(now - window_start, 1e-9)
                        lr = self.optimizer.param_groups[0]["lr"]
                        self._record(
                            {"split": "train", "loss": loss, "lr": lr, "tgt_tokens_per_s": rate}
                        )
                        postfix = {
                            "loss": f"{loss:.3f}",
                            "lr": f"{lr:.2e}",
                            "tok/s": f"{rate:,.0f}",
                        }
                        if budget < float("inf"):  # the time budget, not max_steps, ends the run
                            left = max(budget - self.progress.elapsed, 0)
                            postfix["eta"] = f"{int(left // 60)}:{int(left % 60):02d}"
                        bar.set_postfix(postfix)
                        window_tokens, window_start = 0, time.perf_counter()
                    if step % train.validate_every == 0 and self._validate_and_save():
                        reason = "early stopping"
                        break
                    if until_step is not None and step >= until_step:
                        self._save(self.sampler.state_dict())
                        return self._summary("interrupted")
                    if self.progress.elapsed >= budget:
                        reason = "max_minutes"
                        break
                    if step >= train.max_steps:
                        break
                if reason != "max_steps":
                    break
        except KeyboardInterrupt:
            self._save(sampler_state)
            self.log(
                f"interrupted at step {self.progress.step}; checkpoint saved, "
                "continue with --resume"
            )
            raise
        finally:
            bar.close()
        if self.progress.step % train.validate_every != 0:
            self._validate_and_save()
        self._ensure_best()
        return self._summary(reason)

    def _train_step(self, batch: Batch) -> tuple[float, int]:
        """One optimizer step; returns the mean loss per target token and the token count."""
        train = self.config.train
        self.model.train()
        self.schedule.apply(self.progress.step + 1, self.progress.elapsed)
        batch = batch.to(self.device)
        tokens = batch.n_tgt_tokens
        with autocast(self.device, self.dtype):
            if train.teacher_forcing < 1.0:
                logits = scheduled_sampling_log_probs(self.model, batch, train.teacher_forcing)
            else:
                logits, _ = self.model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = label_smoothed_loss(logits, batch.tgt_out, train.label_smoothing) / tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_norm)
        self.optimizer.step()
        return loss.item(), tokens

    # -- validation and checkpoints -----------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Dev loss, perplexity, BLEU, chrF and exact match."""
        assert self.dev_data is not None
        train = self.config.train
        loss = corpus_loss(self.model, self.dev_data, train.batch_tokens, self.device, self.dtype)
        decode_config = self.config.decode.model_copy(
            update={"beam": train.dev_beam, "n_best": 1, "sample": False}
        )
        results = translate_corpus(
            self.model,
            self.dev_data,
            decode_config,
            self.device,
            self.dtype,
            train.dev_max_sentences,
        )
        hypotheses = detokenize(results, self.tgt_tok)
        references = self.dev_refs[: len(hypotheses)]
        metrics = {"loss": loss.nll, "ppl": loss.ppl, **corpus_metrics(hypotheses, references)}
        metrics["exact"] = exact_match(hypotheses, references)
        return metrics

    def _validate_and_save(self) -> bool:
        """Validate (when there is a dev set), checkpoint, and say whether to stop early."""
        train = self.config.train
        improved = True
        if self.dev_data is not None:
            metrics = self.validate()
            self.progress.last_dev = metrics
            self._record({"split": "dev", **metrics})
            value = metrics[train.metric]
            higher = HIGHER_IS_BETTER[train.metric]
            best = self.progress.best_value
            improved = best is None or (value > best if higher else value < best)
            self.schedule.validated(value, higher)
            if improved:
                self.progress.best_value, self.progress.best_step = value, self.progress.step
                self.progress.bad_validations = 0
            else:
                self.progress.bad_validations += 1
            self.log(
                f"step {self.progress.step}: dev loss {metrics['loss']:.3f} "
                f"ppl {metrics['ppl']:.2f} BLEU {metrics['bleu']:.2f} "
                f"chrF {metrics['chrf']:.2f} exact {metrics['exact']:.1%}"
                + (" (best)" if improved else "")
            )
        if train.patience and self.progress.bad_validations >= train.patience:
            self.progress.stopped_early = True
        self._save(self.sampler.state_dict(), best=improved)
        return self.progress.stopped_early

    def _payload(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "src_vocab_size": self.src_tok.vocab_size,
            "tgt_vocab_size": self.tgt_tok.vocab_size,
            "model": self.model.state_dict(),
        }

    def _save(self, sampler_state: dict[str, int], best: bool = False) -> None:
        directory = self.run_dir / "checkpoints"
        payload = {
            **self._payload(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "sampler": sampler_state,
            "progress": asdict(self.progress),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        save_checkpoint(directory / f"step-{self.progress.step:08d}.pt", payload)
        for old in step_checkpoints(self.run_dir)[: -self.config.train.keep_last]:
            old.unlink()
        if best:
            save_checkpoint(
                directory / "best.pt",
                {**self._payload(), "step": self.progress.step, "dev": self.progress.last_dev},
            )

    def _ensure_best(self) -> None:
        if not (self.run_dir / "checkpoints" / "best.pt").exists():
            self._save(self.sampler.state_dict(), best=True)

    def _record(self, entry: dict[str, Any]) -> None:
        entry = {"step": self.progress.step, "time": round(self.progress.elapsed, 3), **entry}
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if self.tensorboard is not None:
            for key, value in entry.items():
                if key not in ("step", "split") and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{entry['split']}/{key}", value, entry["step"])

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
        )


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _tensorboard(run_dir: Path) -> Any:
    """A TensorBoard writer when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def train(config: Config, resume: bool = False, progress_bar: bool | None = None) -> TrainSummary:
    """Train the run `config` describes; the Python entry point behind `attnmt train`."""
    return Trainer(config, resume=resume, progress_bar=progress_bar).run()
